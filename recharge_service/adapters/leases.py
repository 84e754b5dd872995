"""Who works on an order: the sentinel's (and operators') leases on ``recharge_orders``.

``lease_owner`` names the holder; ``lease_until`` is when the lease ends — and, once released
(owner cleared), when the last visit ended. A lease is free when nobody holds it or it expired.

``claim_batch`` is the only place that decides which orders a sentinel run takes: due orders, the
merchants taking turns (each merchant's first due order, then each one's second, …: a window
``ROW_NUMBER() OVER (PARTITION BY merchant_id …)``), and within a merchant the least recently
visited first (never visited first), then the oldest change first — so orders that stay undecided
cannot starve newer ones, and one merchant's backlog of thousands cannot push another merchant's
few orders out of a run: with a batch of ``n`` and ``m`` merchants with due orders, each gets at
least ``n / m`` places. It is one short write of two set-based statements: pick the due orders in
that order (``LIMIT n``; on PostgreSQL ``FOR UPDATE OF recharge_orders SKIP LOCKED``, so
concurrent claimers skip each other's rows instead of waiting), then ``UPDATE … WHERE order_no IN
(picked) AND <free> RETURNING order_no``. ``claim_one`` and ``renew`` are single conditional updates
that answer at once; ``release_all`` is staged with the unit of work that records the visits. A
lease that is not released (crash, cancelled run) simply expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection, and_, false, func, or_, select, update

from rc_common.db import Database
from recharge_service.adapters.orm import recharge_orders
from recharge_service.adapters.repository import Staged, read, write
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
    def __init__(self, db: Database, staged: Staged) -> None:
        self._db = db
        self._staged = staged

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
        """Lease up to ``limit`` due orders to ``owner`` until ``until`` (its own write, at once).

        Due: status in ``statuses`` (those in ``only_expired`` only once past their expiry), last
        changed before ``changed_before`` and not visited since ``visited_before`` (None = any
        time), and no live lease. Returns them merchants taking turns, each one's least recently
        visited first."""
        due = _due(now, statuses, only_expired, changed_before, visited_before)
        oldest_first = (func.coalesce(orders.lease_until, NEVER), orders.updated_at, orders.order_no)
        ranked = (
            select(
                orders.order_no,
                func.row_number().over(partition_by=orders.merchant_id, order_by=oldest_first).label("turn"),
                oldest_first[0].label("visited"),
                orders.updated_at.label("changed"),
            )
            .where(due)
            .subquery("ranked")
        )
        picked = (
            select(orders.order_no)
            .join_from(recharge_orders, ranked, ranked.c.order_no == orders.order_no)
            .order_by(ranked.c.turn, ranked.c.visited, ranked.c.changed, orders.order_no)
            .limit(limit)
            # PostgreSQL; on SQLite the writer is alone
            .with_for_update(of=recharge_orders, skip_locked=True)
        )

        def unit(conn: Connection) -> list[str]:
            wanted = list(conn.execute(picked).scalars())
            if not wanted:
                return []
            won = conn.execute(
                update(recharge_orders)
                .where(and_(orders.order_no.in_(wanted), _free(now)))
                .values(lease_owner=owner, lease_until=until)
                .returning(orders.order_no)
            )
            taken = set(won.scalars())
            return [order_no for order_no in wanted if order_no in taken]

        return await write(self._db, unit)

    async def claim_one(self, order_no: str, owner: str, now: datetime, until: datetime) -> bool:
        """Lease one order whatever its status (operators' actions), at once; False when someone
        holds it."""
        statement = (
            update(recharge_orders)
            .where(and_(orders.order_no == order_no, _free(now)))
            .values(lease_owner=owner, lease_until=until)
        )
        return await write(self._db, lambda conn: conn.execute(statement).rowcount == 1)

    async def renew(self, order_no: str, owner: str, until: datetime) -> bool:
        """Extend ``owner``'s lease, at once; False when another owner took the order meanwhile."""
        statement = (
            update(recharge_orders)
            .where(and_(orders.order_no == order_no, orders.lease_owner == owner))
            .values(lease_until=until)
        )
        return await write(self._db, lambda conn: conn.execute(statement).rowcount == 1)

    async def release(self, order_no: str, owner: str, now: datetime) -> None:
        await self.release_all([order_no], owner, now)

    async def release_all(self, order_nos: Sequence[str], owner: str, now: datetime) -> None:
        """Stage giving the orders up (if ``owner`` still holds them), remembering ``now`` as their
        last visit."""
        if not order_nos:
            return
        statement = (
            update(recharge_orders)
            .where(and_(orders.order_no.in_(list(order_nos)), orders.lease_owner == owner))
            .values(lease_owner=None, lease_until=now)
        )

        def op(conn: Connection) -> None:
            conn.execute(statement)

        self._staged.add(op)

    async def holder(self, order_no: str) -> str | None:
        """Who holds the order's lease now (None once released; expiry is not looked at)."""
        query = select(orders.lease_owner).where(orders.order_no == order_no)
        return await read(self._db, lambda conn: conn.execute(query).scalar_one_or_none())
