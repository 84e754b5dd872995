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

Every claim adds one to the order's ``lease_token`` and hands the new value to the claimer: its
fencing token. Work under the lease writes the order only while owner and token are still its own
(``OrdersRepository.save``, ``service_layer/holding.py``), so a replica that lost the order to
another — its lease ran out while it was paused — cannot write over the new holder's work.

Lease times (``now``, ``until``) come from the caller's clock, or — ``database_clock`` (what the
service runs with) — from the database's: PostgreSQL's ``now()`` (on SQLite, one host's file, the
host's clock), keeping the caller's lease *length*. Replicas whose clocks disagree then still agree
on when a lease ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, false, func, or_, select, update

from rc_common.db import Database
from recharge_service.adapters.orm import recharge_orders
from recharge_service.adapters.repository import Staged, database_now, read, write
from recharge_service.domain.order import OrderStatus
from recharge_service.service_layer.storage import Claimed, StagedClaim

orders = recharge_orders.c
NEVER = datetime(2000, 1, 1, tzinfo=UTC)


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(orders.lease_owner.is_(None), orders.lease_until.is_(None), orders.lease_until < now)


def _due(
    now: datetime,
    lease_now: datetime,
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
    return and_(wanted, _free(lease_now))


def _due_early(
    now: datetime,
    lease_now: datetime,
    at_once: Sequence[OrderStatus],
    left: Sequence[OrderStatus],
    left_before: datetime | None,
    visited_before: datetime | None,
) -> ColumnElement[bool]:
    """Due whatever the hold: in ``at_once``, past expiry and unchanged since (a visit that leaves
    it undecided puts it back on the hold's schedule), or in ``left`` and unchanged since
    ``left_before``."""
    wanted: ColumnElement[bool] = false()
    if at_once:
        expired = and_(orders.expires_at <= now, orders.updated_at <= orders.expires_at)
        wanted = or_(wanted, and_(orders.status.in_([s.name for s in at_once]), expired))
    if left and left_before is not None:
        wanted = or_(wanted, and_(orders.status.in_([s.name for s in left]), orders.updated_at < left_before))
    if visited_before is not None:
        wanted = and_(wanted, or_(orders.lease_until.is_(None), orders.lease_until < visited_before))
    return and_(wanted, _free(lease_now))


class OrderLeases:
    def __init__(self, db: Database, staged: Staged, *, database_clock: bool = False) -> None:
        self._db = db
        self._staged = staged
        self._database_clock = database_clock

    def _times(self, conn: Connection, now: datetime, until: datetime) -> tuple[datetime, datetime]:
        """(now, until) on the clock leases are kept by (see the module's doc)."""
        if not self._database_clock:
            return now, until
        db_now = database_now(conn)
        return db_now, db_now + (until - now)

    async def now(self, fallback: datetime) -> datetime:
        """The time on the leases' clock (``fallback`` when that is the caller's)."""
        if not self._database_clock:
            return fallback
        return await read(self._db, database_now)

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
        at_once: Sequence[OrderStatus] = (),
        left: Sequence[OrderStatus] = (),
        left_before: datetime | None = None,
    ) -> list[Claimed]:
        """Lease up to ``limit`` due orders to ``owner`` until ``until`` (its own write, at once).

        Due: status in ``statuses`` (those in ``only_expired`` only once past their expiry), last
        changed before ``changed_before`` — or in ``at_once``, past their expiry and unchanged
        since, or in ``left`` and unchanged since ``left_before`` — and not visited since
        ``visited_before`` (None = any time), and no live lease. Returns them merchants taking
        turns, each one's least recently visited first, each with its fencing token."""
        oldest_first = (func.coalesce(orders.lease_until, NEVER), orders.updated_at, orders.order_no)

        def _picked(lease_now: datetime) -> Select[Any]:
            due = _due(now, lease_now, statuses, only_expired, changed_before, visited_before)
            due = or_(due, _due_early(now, lease_now, at_once, left, left_before, visited_before))
            ranked = (
                select(
                    orders.order_no,
                    func.row_number()
                    .over(partition_by=orders.merchant_id, order_by=oldest_first)
                    .label("turn"),
                    oldest_first[0].label("visited"),
                    orders.updated_at.label("changed"),
                )
                .where(due)
                .subquery("ranked")
            )
            return (
                select(orders.order_no)
                .join_from(recharge_orders, ranked, ranked.c.order_no == orders.order_no)
                .order_by(ranked.c.turn, ranked.c.visited, ranked.c.changed, orders.order_no)
                .limit(limit)
                # PostgreSQL; on SQLite the writer is alone
                .with_for_update(of=recharge_orders, skip_locked=True)
            )

        def unit(conn: Connection) -> list[Claimed]:
            lease_now, lease_until = self._times(conn, now, until)
            wanted: list[str] = list(conn.execute(_picked(lease_now)).scalars())
            if not wanted:
                return []
            won = conn.execute(
                update(recharge_orders)
                .where(and_(orders.order_no.in_(wanted), _free(lease_now)))
                .values(lease_owner=owner, lease_until=lease_until, lease_token=orders.lease_token + 1)
                .returning(orders.order_no, orders.lease_token)
            )
            taken = {row.order_no: row.lease_token for row in won}
            return [Claimed(order_no, taken[order_no]) for order_no in wanted if order_no in taken]

        return await write(self._db, unit)

    async def claim_one(self, order_no: str, owner: str, now: datetime, until: datetime) -> int | None:
        """Lease one order whatever its status (operators' actions, the credit after a payment),
        at once: its fencing token, or None when someone holds it."""

        def unit(conn: Connection) -> int | None:
            lease_now, lease_until = self._times(conn, now, until)
            statement = (
                update(recharge_orders)
                .where(and_(orders.order_no == order_no, _free(lease_now)))
                .values(lease_owner=owner, lease_until=lease_until, lease_token=orders.lease_token + 1)
                .returning(orders.lease_token)
            )
            return conn.execute(statement).scalar_one_or_none()

        return await write(self._db, unit)

    def stage_claim(self, order_no: str, owner: str, now: datetime, until: datetime) -> StagedClaim:
        """``claim_one`` staged with the unit of work (no transaction of its own)."""
        claim, got = StagedClaim(), []

        def op(conn: Connection) -> None:
            lease_now, lease_until = self._times(conn, now, until)
            statement = (
                update(recharge_orders)
                .where(and_(orders.order_no == order_no, _free(lease_now)))
                .values(lease_owner=owner, lease_until=lease_until, lease_token=orders.lease_token + 1)
                .returning(orders.lease_token)
            )
            got.append(conn.execute(statement).scalar_one_or_none())

        def taken() -> None:
            claim.token = got[-1] if got else None

        self._staged.add(op, taken)
        return claim

    async def renew(
        self, order_no: str, owner: str, now: datetime, until: datetime, token: int | None = None
    ) -> bool:
        """Extend ``owner``'s lease (the one of fencing ``token`` when given), at once; False when
        another owner took the order meanwhile."""

        def unit(conn: Connection) -> bool:
            _lease_now, lease_until = self._times(conn, now, until)
            ours = and_(orders.order_no == order_no, orders.lease_owner == owner)
            if token is not None:
                ours = and_(ours, orders.lease_token == token)
            statement = update(recharge_orders).where(ours).values(lease_until=lease_until)
            return conn.execute(statement).rowcount == 1

        return await write(self._db, unit)

    async def release(self, order_no: str, owner: str, now: datetime) -> None:
        await self.release_all([order_no], owner, now)

    async def release_all(self, order_nos: Sequence[str], owner: str, now: datetime) -> None:
        """Stage giving the orders up (if ``owner`` still holds them), remembering ``now`` (on the
        leases' clock) as their last visit."""
        if not order_nos:
            return
        wanted = list(order_nos)

        def op(conn: Connection) -> None:
            lease_now, _ = self._times(conn, now, now)
            conn.execute(
                update(recharge_orders)
                .where(and_(orders.order_no.in_(wanted), orders.lease_owner == owner))
                .values(lease_owner=None, lease_until=lease_now)
            )

        self._staged.add(op)

    async def holder(self, order_no: str) -> str | None:
        """Who holds the order's lease now (None once released; expiry is not looked at)."""
        query = select(orders.lease_owner).where(orders.order_no == order_no)
        return await read(self._db, lambda conn: conn.execute(query).scalar_one_or_none())
