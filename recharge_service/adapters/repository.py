"""Repositories of the recharge center over ``rc_common.db``: reads now, writes staged.

Reads run at once (``Database.read``, a snapshot outside any write transaction). Writes are
*staged* on the unit of work and run together, back to back, in one ``Database.write`` when it
commits, so a write transaction never waits on the event loop. Every staged write carries its own
guard instead of relying on a lock taken by an earlier read:

- ``OrdersRepository.save`` is the optimistic-concurrency write, ``UPDATE … WHERE version = :v``;
  when another writer got there first it raises ``StaleOrder`` inside the unit (the whole unit
  rolls back) and the caller re-reads and decides again. The same write turns the order's pending
  changes into timeline rows and its events into outbox rows, so a state change, its history and
  its follow-ups commit together or not at all.
- inserts that may repeat (a payment, an outbox row) are ``INSERT … ON CONFLICT DO NOTHING``.

Every timeline row is written by ``insert_timeline``, which stamps it with the writing replica's
node id (``--node-id``, given to ``uow_factory`` by the composition root): no flow that builds an
entry has to remember it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from rc_common.clock import utc_now
from rc_common.db import Database
from rc_common.sql import insert_or_ignore
from recharge_service.adapters.orm import outbox, payments, recharge_orders, timeline_events
from recharge_service.domain.followups import followups_for
from recharge_service.domain.order import OPEN_STATUSES, Channel, OrderStatus, RechargeOrder
from recharge_service.domain.timeline import TRANSITION, TimelineEntry
from recharge_service.service_layer import holding
from recharge_service.service_layer.limits import OpenOrders
from recharge_service.service_layer.storage import (
    DuplicateKey,
    OrderPage,
    StaleOrder,
    StorageError,
    order_page_token,
    read_order_page_token,
)

__all__ = ["OrderPage", "StaleOrder"]  # the port's types, for the adapters' users

_ORDER_FIELDS = (
    "order_no",
    "merchant_id",
    "merchant_version",
    "idempotency_key",
    "card_no",
    "pay_amount_fen",
    "bonus_fen",
    "credit_amount_fen",
    "rule_version",
    "prepay_id",
    "transaction_id",
    "out_refund_no",
    "failure_reason",
    "payer_openid",
    "created_at",
    "updated_at",
    "paid_at",
    "expires_at",
    "attempts",
    "last_error",
)
Op = Callable[[Connection], None]
T = TypeVar("T")


async def read(db: Database, query: Callable[[Connection], T]) -> T:
    """``db.read`` with the database's failures as the port's ``StorageError``."""
    try:
        return await db.read(query)
    except SQLAlchemyError as exc:
        raise StorageError(f"read failed: {type(exc).__name__}") from exc


async def write(db: Database, unit: Callable[[Connection], T], *, label: str = "") -> T:
    """``db.write`` with a taken unique key as ``DuplicateKey`` and other database failures as
    ``StorageError`` (the unit wrote nothing either way)."""
    try:
        return await db.write(unit, label=label)
    except IntegrityError as exc:
        raise DuplicateKey(f"write refused: {type(exc).__name__}") from exc
    except SQLAlchemyError as exc:
        raise StorageError(f"write failed: {type(exc).__name__}") from exc


class Staged:
    """The writes of one unit of work, and what to do once they are committed. Timeline and outbox
    rows are gathered apart and inserted together at the end of the unit (one statement each), in
    the order of the story: answers the flow left pending, the order's state changes, then the
    other rows the unit staged (notes, the ``sent`` rows of the calls that follow). ``node`` is the
    replica writing them."""

    def __init__(self, node: str = "") -> None:
        self.node = node
        self.ops: list[Op] = []
        self.after: list[Callable[[], None]] = []
        self.transitions: list[TimelineEntry] = []
        self.entries: list[TimelineEntry] = []
        self.outbox: list[dict[str, Any]] = []

    def add(self, op: Op, after: Callable[[], None] | None = None) -> None:
        self.ops.append(op)
        if after is not None:
            self.after.append(after)

    def note(self, entry: TimelineEntry, after: Callable[[], None] | None = None) -> None:
        self.entries.append(entry)
        if after is not None:
            self.after.append(after)

    def drain(self) -> Staged:
        """What was staged (this object is empty afterwards)."""
        taken = Staged(self.node)
        taken.ops, taken.after, taken.outbox = self.ops, self.after, self.outbox
        taken.transitions, taken.entries = self.transitions, self.entries
        self.ops, self.after, self.transitions, self.entries, self.outbox = [], [], [], [], []
        return taken

    def __bool__(self) -> bool:
        return bool(self.ops or self.transitions or self.entries or self.outbox)

    def apply(self, conn: Connection, pending: Sequence[TimelineEntry] = ()) -> None:
        """Run the staged writes: the statements in order, then every timeline row (``pending``
        first), then the follow-ups."""
        for op in self.ops:
            op(conn)
        insert_timeline(conn, [*pending, *self.transitions, *self.entries], self.node)
        insert_or_ignore(conn, outbox, self.outbox, ["event_id"])


def _status_name(value: int) -> str:
    return OrderStatus(value).name if value else ""


def _status_value(name: str) -> int:
    return int(OrderStatus[name]) if name else 0


def order_from_row(row: RowMapping) -> RechargeOrder:
    values: dict[str, Any] = {name: row[name] for name in _ORDER_FIELDS}
    return RechargeOrder(
        channel=Channel[row["channel"]],
        status=OrderStatus[row["status"]],
        version=row["version"],
        **values,
    )


def _order_values(order: RechargeOrder) -> dict[str, Any]:
    values = {name: getattr(order, name) for name in _ORDER_FIELDS}
    values.update(channel=order.channel.name, status=order.status.name)
    return values


def timeline_row(entry: TimelineEntry, node: str) -> dict[str, Any]:
    """The row of ``entry`` as written by replica ``node``."""
    return {
        "order_no": entry.order_no,
        "at": entry.at,
        "kind": entry.kind,
        "from_status": _status_name(entry.from_status),
        "to_status": _status_name(entry.to_status),
        "method": entry.method,
        "outcome": entry.outcome,
        "latency_ms": entry.latency_ms,
        "error": entry.error[:2000],
        "actor": entry.actor,
        "node": node[:64],
        "detail": entry.detail[:2000],
    }


# Statements built once: executing a prebuilt statement skips building and cache-keying it again.
_INSERT_TIMELINE = insert(timeline_events)
_GET_ORDER = select(recharge_orders).where(recharge_orders.c.order_no == bindparam("order_no"))
_GET_BY_KEY = select(recharge_orders).where(
    recharge_orders.c.merchant_id == bindparam("merchant_id"),
    recharge_orders.c.idempotency_key == bindparam("key"),
)
_COUNT_OPEN = select(func.count()).where(
    recharge_orders.c.merchant_id == bindparam("merchant_id"),
    recharge_orders.c.status.in_([s.name for s in OPEN_STATUSES]),
)
_OPEN = recharge_orders.c.status.in_([s.name for s in OPEN_STATUSES])
_ON_CARD = recharge_orders.c.card_no == bindparam("card_no")
_OF_PAYER = recharge_orders.c.payer_openid == bindparam("payer_openid")
_COUNT_OPEN_FOR = select(
    func.count().filter(_ON_CARD),
    func.count().filter(and_(_ON_CARD, _OF_PAYER)),
    func.count().filter(_OF_PAYER),
).where(recharge_orders.c.merchant_id == bindparam("merchant_id"), _OPEN, or_(_ON_CARD, _OF_PAYER))
_INSERT_ORDER = insert(recharge_orders)
#: SET comes from the parameters' column names; the guard's parameters are named apart.
_SAVE_ORDER = update(recharge_orders).where(
    and_(
        recharge_orders.c.order_no == bindparam("b_order_no"),
        recharge_orders.c.version == bindparam("b_read_version"),
    )
)
#: The same, fenced: only while the order's lease is still the writer's (owner and token).
_SAVE_FENCED = _SAVE_ORDER.where(
    and_(
        recharge_orders.c.lease_owner == bindparam("b_lease_owner"),
        recharge_orders.c.lease_token == bindparam("b_lease_token"),
    )
)
_LEASE_OF = select(recharge_orders.c.lease_owner, recharge_orders.c.lease_token).where(
    recharge_orders.c.order_no == bindparam("order_no")
)
_PAYMENT_EXISTS = select(payments.c.transaction_id).where(
    payments.c.transaction_id == bindparam("transaction_id")
)


def insert_timeline(conn: Connection, entries: Sequence[TimelineEntry], node: str) -> None:
    """Write ``entries`` as replica ``node`` (every timeline row is written here)."""
    if entries:
        conn.execute(_INSERT_TIMELINE, [timeline_row(entry, node) for entry in entries])


def _transition_rows(order: RechargeOrder, at: datetime) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            order.order_no,
            at,
            TRANSITION,
            int(change.from_status),
            int(change.to_status),
            actor=change.actor,
            detail=change.detail,
        )
        for change in order.changes
    ]


def _outbox_rows(order: RechargeOrder) -> list[dict[str, Any]]:
    return [
        {
            "order_no": order.order_no,
            "merchant_id": order.merchant_id,
            "topic": followup.topic,
            "event_id": followup.event_id,
            "payload": json.dumps(followup.payload, ensure_ascii=False),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": order.updated_at,
            "last_error": "",
            "created_at": order.updated_at,
        }
        for event in order.events
        for followup in followups_for(order, event)
    ]


def database_now(conn: Connection) -> datetime:
    """Now on the database's clock (PostgreSQL's ``now()``: the transaction's start); SQLite lives
    in the process, whose clock it is."""
    if conn.dialect.name == "postgresql":
        return conn.execute(select(func.now())).scalar_one()
    return utc_now()


class OrdersRepository:
    def __init__(self, db: Database, staged: Staged, *, database_clock: bool = False) -> None:
        self._db = db
        self._staged = staged
        self._database_clock = database_clock

    async def get(self, order_no: str) -> RechargeOrder | None:
        params = {"order_no": order_no}
        row = await read(self._db, lambda conn: conn.execute(_GET_ORDER, params).mappings().first())
        return order_from_row(row) if row else None

    async def get_by_idempotency_key(self, merchant_id: str, key: str) -> RechargeOrder | None:
        params = {"merchant_id": merchant_id, "key": key}
        row = await read(self._db, lambda conn: conn.execute(_GET_BY_KEY, params).mappings().first())
        return order_from_row(row) if row else None

    async def count_open(self, merchant_id: str) -> int:
        params = {"merchant_id": merchant_id}
        return int(await read(self._db, lambda conn: conn.execute(_COUNT_OPEN, params).scalar_one()))

    async def count_open_for(self, merchant_id: str, card_no: str, payer_openid: str) -> OpenOrders:
        params = {"merchant_id": merchant_id, "card_no": card_no, "payer_openid": payer_openid}
        row = await read(self._db, lambda conn: conn.execute(_COUNT_OPEN_FOR, params).one())
        return OpenOrders(on_card=int(row[0]), payer_on_card=int(row[1]), of_payer=int(row[2]))

    async def add(self, order: RechargeOrder, *, actor: str = "system", detail: str = "") -> None:
        """Stage a new order (the commit raises IntegrityError when the idempotency key exists),
        leased to the flow creating it when it holds a lease on it (``holding``)."""
        values = {**_order_values(order), "version": 0}
        lease = holding.held(order.order_no)
        if lease is not None:
            values.update(
                lease_owner=lease.owner,
                lease_token=lease.token,
                lease_until=order.created_at + lease.length,
            )
        created = TimelineEntry(
            order.order_no,
            order.created_at,
            TRANSITION,
            0,
            int(order.status),
            actor=actor,
            detail=detail or "order created",
        )

        database_clock = self._database_clock

        def op(conn: Connection) -> None:
            if lease is not None and database_clock:  # its first lease ends by the leases' clock too
                values["lease_until"] = database_now(conn) + lease.length
            conn.execute(_INSERT_ORDER, values)

        order.version = 0
        self._staged.add(op)
        self._staged.note(created)

    async def save(self, order: RechargeOrder) -> None:
        """Stage the write of the order if nobody changes it meanwhile, with its changes (timeline)
        and events (outbox); the commit raises ``StaleOrder`` when somebody did. Under a lease
        (``holding``) the write is also fenced: ``LeaseLost`` when another holder took over."""
        read_version = order.version
        values = {
            **_order_values(order),
            "version": read_version + 1,
            "b_order_no": order.order_no,
            "b_read_version": read_version,
        }
        lease = holding.held(order.order_no)
        if lease is not None:
            values.update(b_lease_owner=lease.owner, b_lease_token=lease.token)
            if order.status in holding.RELEASED_AT:  # the holder's work ends here: give it up
                values.update(lease_owner=None, lease_until=None)  # (no sentinel visit to remember)

        def op(conn: Connection) -> None:
            if conn.execute(_SAVE_ORDER if lease is None else _SAVE_FENCED, values).rowcount == 1:
                return
            if lease is not None:
                now = conn.execute(_LEASE_OF, {"order_no": order.order_no}).first()
                if now is None or (now.lease_owner, now.lease_token) != (lease.owner, lease.token):
                    lease.lost = "another replica took the order over"
                    raise holding.LeaseLost(order.order_no, lease.lost)
            raise StaleOrder(order.order_no)

        def saved() -> None:
            order.version = read_version + 1
            order.changes.clear()
            order.events.clear()

        self._staged.add(op, saved)
        self._staged.transitions.extend(_transition_rows(order, order.updated_at))
        self._staged.outbox.extend(_outbox_rows(order))

    async def list(
        self,
        *,
        merchant_id: str,
        card_no: str = "",
        statuses: Sequence[OrderStatus] = (),
        channel: Channel | None = None,
        page_size: int = 50,
        page_token: str = "",
    ) -> OrderPage:
        """Newest first (order numbers sort by creation time)."""
        query = select(recharge_orders).where(recharge_orders.c.merchant_id == merchant_id)
        if card_no:
            query = query.where(recharge_orders.c.card_no == card_no)
        if statuses:
            query = query.where(recharge_orders.c.status.in_([s.name for s in statuses]))
        if channel is not None:
            query = query.where(recharge_orders.c.channel == channel.name)
        if page_token:
            query = query.where(recharge_orders.c.order_no < read_order_page_token(page_token))
        query = query.order_by(recharge_orders.c.order_no.desc()).limit(page_size + 1)
        rows = await read(self._db, lambda conn: conn.execute(query).mappings().all())
        orders = [order_from_row(row) for row in rows[:page_size]]
        token = order_page_token(orders[-1].order_no) if len(rows) > page_size else ""
        return OrderPage(orders, token)

    async def find(
        self, query: str, *, merchant_id: str = "", limit: int = 20
    ) -> Sequence[RechargeOrder]:
        """Exact matches of the order number, card number or transaction id (each indexed),
        newest first."""
        c = recharge_orders.c
        found = select(recharge_orders).where(
            or_(c.order_no == query, c.card_no == query, c.transaction_id == query)
        )
        if merchant_id:
            found = found.where(c.merchant_id == merchant_id)
        found = found.order_by(c.created_at.desc(), c.order_no.desc()).limit(limit)
        rows = await read(self._db, lambda conn: conn.execute(found).mappings().all())
        return [order_from_row(row) for row in rows]


class PaymentsRepository:
    def __init__(self, db: Database, staged: Staged) -> None:
        self._db = db
        self._staged = staged

    async def exists(self, transaction_id: str) -> bool:
        params = {"transaction_id": transaction_id}
        return await read(self._db, lambda conn: conn.execute(_PAYMENT_EXISTS, params).first() is not None)

    def add_if_absent(
        self,
        transaction_id: str,
        order_no: str,
        amount_total_fen: int,
        success_time: str,
        recorded_at: datetime,
    ) -> None:
        """Stage the payment, recorded once per transaction id (a repeat changes nothing)."""
        row = {
            "transaction_id": transaction_id,
            "order_no": order_no,
            "amount_total_fen": amount_total_fen,
            "success_time": success_time,
            "recorded_at": recorded_at,
        }

        def op(conn: Connection) -> None:
            insert_or_ignore(conn, payments, [row], ["transaction_id"])

        self._staged.add(op)

    async def for_order(self, order_no: str) -> list[dict[str, Any]]:
        query = select(payments).where(payments.c.order_no == order_no)
        rows = await read(self._db, lambda conn: conn.execute(query).mappings().all())
        return [dict(row) for row in rows]


def _entry_from_row(row: RowMapping) -> TimelineEntry:
    return TimelineEntry(
        row["order_no"],
        row["at"],
        row["kind"],
        _status_value(row["from_status"]),
        _status_value(row["to_status"]),
        row["method"],
        row["outcome"],
        row["latency_ms"],
        row["error"],
        row["actor"],
        row["detail"],
        seq=row["id"],
        node=row["node"],
    )


class TimelineRepository:
    def __init__(self, db: Database, staged: Staged) -> None:
        self._db = db
        self._staged = staged

    def stage(self, entry: TimelineEntry, after: Callable[[], None] | None = None) -> None:
        """Stage one row (``after`` runs once it is committed)."""
        self._staged.note(entry, after)

    async def add(self, entry: TimelineEntry, *, after: Callable[[], None] | None = None) -> None:
        self.stage(entry, after)

    async def for_order(self, order_no: str) -> list[TimelineEntry]:
        query = (
            select(timeline_events)
            .where(timeline_events.c.order_no == order_no)
            .order_by(timeline_events.c.id)
        )
        rows = await read(self._db, lambda conn: conn.execute(query).mappings().all())
        return [_entry_from_row(row) for row in rows]
