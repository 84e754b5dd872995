"""Reading and changing one order with optimistic concurrency.

``change_order`` opens a unit of work, reads the order, lets ``decide`` change it (returning False
when there is nothing to do; ``decide`` may also stage more writes on the unit of work it is
given), writes it with the version check and commits. When another writer changed the order in
between, the commit writes nothing and it re-reads and decides again. ``known``: the order as the
caller just read or wrote it, to decide on without reading it again (if it is stale by now, the
version check catches it and the next round reads).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TypeAlias

from rc_common.errors import NotFound
from recharge_service.domain.order import RechargeOrder
from recharge_service.service_layer.call_log import CallLog, folding
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.storage import StaleOrder
from recharge_service.service_layer.unit_of_work import AbstractUnitOfWork

MAX_RACES = 5


@contextlib.asynccontextmanager
async def flow(deps: Deps, *, announced: Iterable[str] = (), order_no: str = "") -> AsyncIterator[CallLog]:
    """One flow on one order: its remote attempts ride in its own commits (``call_log``)."""

    async def flush() -> None:
        async with deps.uow() as uow:
            await uow.commit()

    async with folding(flush, announced=announced, order_no=order_no) as log:
        yield log


async def load_order(deps: Deps, order_no: str, *, merchant_id: str = "") -> RechargeOrder:
    """The order; with ``merchant_id``, only when it is that merchant's (else NOT_FOUND, as if
    it did not exist: one merchant never learns another's order numbers)."""
    async with deps.uow(readonly=True) as uow:
        order = await uow.orders.get(order_no)
    if order is None or (merchant_id and order.merchant_id != merchant_id):
        raise NotFound(f"no recharge order {order_no!r}")
    return order


class Write(enum.Enum):
    """What a decision asks ``change_order_in`` to write (``True``/``False`` mean SAVE/NOTHING)."""

    SAVE = "the order, and what the decision staged"
    STAGED = "only what the decision staged; the order itself is unchanged"
    NOTHING = "nothing"


Decide: TypeAlias = Callable[[RechargeOrder], bool]
DecideIn: TypeAlias = Callable[[RechargeOrder, AbstractUnitOfWork], "bool | Write"]


async def change_order(
    deps: Deps, order_no: str, decide: Decide, *, known: RechargeOrder | None = None
) -> RechargeOrder:
    return await change_order_in(deps, order_no, lambda order, _uow: decide(order), known=known)


async def change_order_in(
    deps: Deps, order_no: str, decide: DecideIn, *, known: RechargeOrder | None = None
) -> RechargeOrder:
    """``change_order`` whose ``decide`` also gets the unit of work (to stage more rows, announce
    a call …) and may ask to write only those (``Write.STAGED``). The one retry-on-conflict loop."""
    for _ in range(MAX_RACES):
        async with deps.uow() as uow:
            if known is not None and known.order_no == order_no and not known.changes:
                order: RechargeOrder | None = dataclasses.replace(known, changes=[], events=[])
                known = None  # a second round reads
            else:
                order = await uow.orders.get(order_no)
            if order is None:
                raise NotFound(f"no recharge order {order_no!r}")
            decided = decide(order, uow)
            write = Write.SAVE if decided is True else Write.NOTHING if decided is False else decided
            if write is Write.NOTHING:
                return order
            if write is Write.SAVE:
                await uow.orders.save(order)
            try:
                await uow.commit()
            except StaleOrder:
                continue
            return order
    raise StaleOrder(f"{order_no}: still changing after {MAX_RACES} re-reads")
