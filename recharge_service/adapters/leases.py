"""Who works on an order: the sentinel's (and operators') leases on ``recharge_orders``.

``lease_owner`` names the holder; ``lease_until`` is when the lease ends — and, once released
(owner cleared), when the last visit ended. A lease is free when nobody holds it or it expired.

``claim_batch`` is the only place that decides which orders a sentinel run takes: due orders, the
least recently visited first (never visited first), then the oldest change first — so orders that
stay undecided cannot starve newer ones. On SQLite the writing transaction is already exclusive
(``BEGIN IMMEDIATE``), so it selects the candidates and takes each with a conditional
``UPDATE ... WHERE order_no = :o AND <free>``, counting rows to know it won. On PostgreSQL it
selects them ``FOR UPDATE SKIP LOCKED`` (concurrent claimers skip each other's rows instead of
waiting) and leases them in one ``UPDATE ... RETURNING``. A lease that is not released (crash,
cancelled run) simply expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from recharge_service.adapters.orm import recharge_orders
from recharge_service.domain.order import OrderStatus

orders = recharge_orders.c
NEVER = datetime(2000, 1, 1, tzinfo=UTC)


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(orders.lease_owner.is_(None), orders.lease_until.is_(None), orders.lease_until < now)


def _due(
    now: datetime,
    statuses: Sequence[OrderStatus],
    only_expired: Sequence[OrderStatus],
    changed_before: datetime | None,
    visited_before: datetime | None,
) -> ColumnElement[bool]:
    anytime = [s.name for s in statuses if s not in only_expired]
    expiring = [s.name for s in statuses if s in only_expired]
    wanted = or_(
        orders.status.in_(anytime) if anytime else false(),
        and_(orders.status.in_(expiring), orders.expires_at <= now) if expiring else false(),
    )
    if changed_before is not None:
        wanted = and_(wanted, orders.updated_at < changed_before)
    if visited_before is not None:
        wanted = and_(wanted, or_(orders.lease_until.is_(None), orders.lease_until < visited_before))
    return and_(wanted, _free(now))


class OrderLeases:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @property
    def _dialect(self) -> str:
        return str(self._session.get_bind().dialect.name)

    async def claim_batch(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        *,
        statuses: Sequence[OrderStatus],
        only_expired: Sequence[OrderStatus] = (),
        changed_before: datetime | None = None,
        visited_before: datetime | None = None,
        limit: int = 500,
    ) -> list[str]:
        """Lease up to ``limit`` due orders to ``owner`` until ``until``.

        Due: status in ``statuses`` (those in ``only_expired`` only once past their expiry), last
        changed before ``changed_before`` and not visited since ``visited_before`` (None = any
        time), and no live lease."""
        due = _due(now, statuses, only_expired, changed_before, visited_before)
        fair = (func.coalesce(orders.lease_until, NEVER), orders.updated_at, orders.order_no)
        candidates = select(orders.order_no).where(due).order_by(*fair).limit(limit)
        if self._dialect == "postgresql":
            locking = candidates.with_for_update(skip_locked=True)
            locked = list((await self._session.execute(locking)).scalars())
            if not locked:
                return []
            won = await self._session.execute(
                update(recharge_orders)
                .where(and_(orders.order_no.in_(locked), _free(now)))
                .values(lease_owner=owner, lease_until=until)
                .returning(orders.order_no)
            )
            taken = set(won.scalars())
            return [order_no for order_no in locked if order_no in taken]
        claimed: list[str] = []
        for order_no in list((await self._session.execute(candidates)).scalars()):
            if await self.claim_one(order_no, owner, now, until):
                claimed.append(order_no)
        return claimed

    async def claim_one(self, order_no: str, owner: str, now: datetime, until: datetime) -> bool:
        """Lease one order whatever its status (operators' actions); False when someone holds it."""
        result = await self._session.execute(
            update(recharge_orders)
            .where(and_(orders.order_no == order_no, _free(now)))
            .values(lease_owner=owner, lease_until=until)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # CursorResult has rowcount

    async def renew(self, order_no: str, owner: str, until: datetime) -> bool:
        """Extend ``owner``'s lease; False when another owner took the order meanwhile."""
        result = await self._session.execute(
            update(recharge_orders)
            .where(and_(orders.order_no == order_no, orders.lease_owner == owner))
            .values(lease_until=until)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # CursorResult has rowcount

    async def release(self, order_no: str, owner: str, now: datetime) -> None:
        await self.release_all([order_no], owner, now)

    async def release_all(self, order_nos: Sequence[str], owner: str, now: datetime) -> None:
        """Give the orders up (if ``owner`` still holds them), remembering ``now`` as their last visit."""
        if order_nos:
            await self._session.execute(
                update(recharge_orders)
                .where(and_(orders.order_no.in_(list(order_nos)), orders.lease_owner == owner))
                .values(lease_owner=None, lease_until=now)
            )

    async def holder(self, order_no: str) -> str | None:
        """Who holds the order's lease now (None once released; expiry is not looked at)."""
        return (
            await self._session.execute(select(orders.lease_owner).where(orders.order_no == order_no))
        ).scalar_one_or_none()
