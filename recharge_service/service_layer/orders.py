"""Reading and changing one order with optimistic concurrency.

``change_order`` opens a unit of work, reads the order, lets ``decide`` change it (returning False
when there is nothing to do), writes it with the version check and commits. When another writer
changed the order in between, it re-reads and decides again.
"""

from __future__ import annotations

from collections.abc import Callable

from rc_common.errors import NotFound
from recharge_service.adapters.repository import StaleOrder
from recharge_service.domain.order import RechargeOrder
from recharge_service.service_layer.deps import Deps

MAX_RACES = 5


async def load_order(deps: Deps, order_no: str) -> RechargeOrder:
    async with deps.uow(readonly=True) as uow:
        order = await uow.orders.get(order_no)
    if order is None:
        raise NotFound(f"no recharge order {order_no!r}")
    return order


async def change_order(deps: Deps, order_no: str, decide: Callable[[RechargeOrder], bool]) -> RechargeOrder:
    for _ in range(MAX_RACES):
        async with deps.uow() as uow:
            order = await uow.orders.get(order_no)
            if order is None:
                raise NotFound(f"no recharge order {order_no!r}")
            if not decide(order):
                return order
            try:
                await uow.orders.save(order)
            except StaleOrder:
                continue
            await uow.commit()
            return order
    raise StaleOrder(f"{order_no}: still changing after {MAX_RACES} re-reads")
