"""One actor per order, across replicas: work on an order runs while holding the order's lease.

The credit after a payment (and the refund path it may turn into), a sentinel visit, an
operator's action and a create resumed by a retry each take the order's lease first (claim: one
conditional ``UPDATE``, ``adapters/leases.py``) and get a *fencing token*; while the work runs:

- the lease is renewed every third of its length (a background task; its end counts from when the
  renewal was *sent*, so the local view of it is never longer than the database's);
- before each outgoing call that changes something elsewhere (pre-recharge, confirm, void, prepay,
  close, refund: ``adapters/retrying.py``) the lease must still be alive by that local view, and
  the call's deadline ends before the lease would (``time_left``);
- each write of the order is fenced in the database by owner and token
  (``OrdersRepository.save``): a replica whose lease ran out and was taken over writes nothing.

A replica that lost its lease gets ``LeaseLost`` at the next of those checks and stops; the new
holder (or the next sentinel visit) carries on from what is on record.

On the hot path the lease costs no transaction of its own: a new order is inserted leased to its
creator, the payment's transaction leases the order to the credit that follows, and the write that
makes the order final (or AWAITING_PAYMENT) releases it (``RELEASED_AT``). The holder is found
through a context variable, so code under ``holding(...)`` needs no lease argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta

from rc_common.errors import Unavailable
from rc_common.logs import get_logger
from recharge_service.domain.order import FINAL, OrderStatus
from recharge_service.service_layer.deps import Deps

log = get_logger("holding")

#: A holder's write that moves the order here also gives the lease up (no write of its own): the
#: order is final, or waits for the customer to pay (the end of a create). A flow ending elsewhere
#: (CREDIT_UNKNOWN, REFUNDING …: off the happy path) releases it with a write of its own.
RELEASED_AT = FINAL | {OrderStatus.AWAITING_PAYMENT}


class LeaseLost(Unavailable):
    """This replica no longer holds the order's lease: it stops; the holder carries on."""

    def __init__(self, order_no: str, why: str) -> None:
        super().__init__("ORDER_BUSY", f"lost the lease of order {order_no}: {why}", order_no=order_no)


@dataclass
class OrderLease:
    """A lease this process holds on one order."""

    order_no: str
    owner: str
    token: int
    length: timedelta
    #: Local monotonic time before which the lease is surely still ours.
    alive_until: float
    lost: str = ""
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)

    def alive(self) -> bool:
        return not self.lost and self.monotonic() < self.alive_until

    def check(self) -> None:
        """``LeaseLost`` unless the lease is surely still ours."""
        if not self.alive():
            raise LeaseLost(self.order_no, self.lost or "it ran out before it could be renewed")


_held: ContextVar[OrderLease | None] = ContextVar("held_order_lease", default=None)


def held(order_no: str) -> OrderLease | None:
    """The lease this flow holds on ``order_no``, if it holds one."""
    lease = _held.get()
    return lease if lease is not None and lease.order_no == order_no else None


def check(order_no: str) -> None:
    """Before a call that changes something elsewhere: ``LeaseLost`` if this flow held the
    order's lease and lost it (nothing to check when it holds none)."""
    lease = held(order_no)
    if lease is not None:
        lease.check()


def time_left(order_no: str) -> float | None:
    """Seconds this flow's lease on ``order_no`` is surely still ours (None: it holds none). An
    outgoing call made under the lease must end by then (``adapters/retrying.py`` caps its
    deadline): were the renewals late — a starved process, a slow database — the call is over
    before another replica can take the order, never in flight beside the new holder's."""
    lease = held(order_no)
    return None if lease is None else lease.alive_until - lease.monotonic()


def lease_of(order_no: str, owner: str, token: int, length: timedelta, started: float) -> OrderLease:
    """The lease a claim sent at local monotonic time ``started`` got."""
    return OrderLease(order_no, owner, token, length, started + length.total_seconds())


async def acquire(deps: Deps, order_no: str, owner: str, length: timedelta) -> OrderLease | None:
    """Take the order's lease for ``owner`` (its own short write), or None when someone holds it."""
    started = time.monotonic()
    now = deps.clock()
    async with deps.uow() as uow:
        token = await uow.leases.claim_one(order_no, owner, now, now + length)
    return None if token is None else lease_of(order_no, owner, token, length, started)


async def release(deps: Deps, lease: OrderLease) -> None:
    """Give the lease up (if it is still ours), remembering now as the order's last visit."""
    async with deps.uow() as uow:
        await uow.leases.release(lease.order_no, lease.owner, deps.clock())
        await uow.commit()


@contextlib.contextmanager
def holding_for_insert(lease: OrderLease) -> Iterator[None]:
    """Stage the insert of a new order in here: it is inserted leased (``lease``, token 1)."""
    token = _held.set(lease)
    try:
        yield
    finally:
        _held.reset(token)


@contextlib.asynccontextmanager
async def holding(deps: Deps, lease: OrderLease) -> AsyncIterator[OrderLease]:
    """Run the body as the holder of ``lease``, renewing it meanwhile (the caller releases it)."""
    renewer = asyncio.create_task(_renew(deps, lease), name=f"lease:{lease.order_no}")
    token = _held.set(lease)
    try:
        yield lease
    finally:
        _held.reset(token)
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer


async def _renew(deps: Deps, lease: OrderLease) -> None:
    every = lease.length.total_seconds() / 3
    while not lease.lost:
        await asyncio.sleep(max(0.0, lease.alive_until - lease.monotonic() - 2 * every))
        sent = lease.monotonic()
        now = deps.clock()
        try:
            async with deps.uow() as uow:
                until = now + lease.length
                kept = await uow.leases.renew(lease.order_no, lease.owner, now, until, lease.token)
        except Exception as exc:  # the database is away: try again; the lease may still run out
            log.warning("lease_renewal_failed", order_no=lease.order_no, error=str(exc))
            await asyncio.sleep(min(every, 1.0))
            continue
        if not kept:
            lease.lost = "another replica holds it now"
            log.warning("lease_lost", order_no=lease.order_no, owner=lease.owner)
            return
        lease.alive_until = sent + lease.length.total_seconds()
