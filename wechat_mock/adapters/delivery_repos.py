"""Repositories of what the simulator sends: notifications (with their delivery state) and
template messages.

The notifier *claims* due notifications with one set-based statement (``UPDATE … RETURNING``; on
PostgreSQL over ``FOR UPDATE SKIP LOCKED``), which moves them out of sight until their lease ends,
and records a whole batch of delivery outcomes in one transaction, each over the version it
claimed. A template message with an idempotency key is one upsert: the first send inserts it,
a repeat counts the duplicate and returns the first message.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Integer, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from wechat_mock.adapters.staging import SqlRepository, versioned_params, versioned_update
from wechat_mock.adapters.tables import (
    from_db,
    from_db_required,
    notifications,
    template_messages,
    to_db,
)
from wechat_mock.domain.messages import TemplateMessage
from wechat_mock.domain.notifications import DeliveryStatus, Notification
from wechat_mock.service_layer.ports import NOTIFICATIONS, Staged

_PENDING = DeliveryStatus.PENDING.value
_INSERT_NOTIFICATION = insert(notifications)
#: PENDING and not among ``:skip`` (those still on their way here).
_WAITING = (
    notifications.c.status == _PENDING,
    notifications.c.id.not_in(bindparam("skip", expanding=True)),
)
_DUE_IDS = (
    select(notifications.c.id)
    .where(*_WAITING)
    .where(notifications.c.next_attempt_at <= bindparam("now", type_=DateTime))
    .order_by(notifications.c.next_attempt_at, notifications.c.id)
    .limit(bindparam("limit", type_=Integer))
    .with_for_update(skip_locked=True)  # PostgreSQL only: concurrent claimers split the work
)
_CLAIM = (
    update(notifications)
    .where(notifications.c.id.in_(_DUE_IDS))
    .values(
        next_attempt_at=bindparam("lease_until", type_=DateTime),
        version=notifications.c.version + 1,
    )
    .returning(*notifications.c)
)
_NEXT_DUE = select(func.min(notifications.c.next_attempt_at)).where(*_WAITING)
_RECORD_OUTCOME = versioned_update(notifications, notifications.c.id)
_INSERT_MESSAGE = insert(template_messages)
_SEND_ONCE = {
    name: dialect.insert(template_messages)
    .on_conflict_do_update(
        index_elements=[template_messages.c.idempotency_key],
        set_={
            "send_count": template_messages.c.send_count + 1,
            "version": template_messages.c.version + 1,
        },
    )
    .returning(*template_messages.c)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


class SqlNotificationRepository(SqlRepository):
    __slots__ = ()

    def add(self, *added: Notification) -> None:
        """Stage new notifications (one multi-row insert); the notifier is woken after commit."""
        rows = [_notification_values(n) for n in added]

        def write(conn: Connection) -> None:
            conn.execute(_INSERT_NOTIFICATION, rows[0] if len(rows) == 1 else rows)

        if rows:
            self._stage(write, NOTIFICATIONS, [(n.id, n.next_attempt_at) for n in added])

    def claim_due(
        self, now: datetime, skip: Collection[str], limit: int, lease_until: datetime
    ) -> Staged[list[Notification]]:
        """Stage the claim of up to ``limit`` PENDING notifications due at ``now`` (but not those
        in ``skip``, still on their way): their next attempt moves to ``lease_until`` (due again
        then if this attempt's outcome is never recorded, e.g. after a crash) and their version
        is bumped. The claimed notifications, oldest due first, are the result."""
        params = {"now": to_db(now), "skip": list(skip), "limit": limit, "lease_until": to_db(lease_until)}
        result: Staged[list[Notification]] = Staged()

        def write(conn: Connection) -> None:
            claimed = [_notification(row) for row in conn.execute(_CLAIM, params).mappings()]
            claimed.sort(key=lambda n: (n.created_at, n.id))
            result.set(claimed)

        self._stage(write)
        return result

    def record(self, attempted: Sequence[Notification]) -> None:
        """Stage the outcomes of a batch of attempts (each notification as the domain left it),
        each written over the version its claim returned. A notification claimed again meanwhile
        (its lease ran out) is left to that newer attempt."""
        batch = [versioned_params(_delivery_values(n), n.id, n.version) for n in attempted]
        for n in attempted:
            n.version += 1

        def write(conn: Connection) -> None:
            conn.execute(_RECORD_OUTCOME, batch[0] if len(batch) == 1 else batch)  # one executemany

        if batch:
            self._stage(write)

    async def next_due(self, skip: Collection[str]) -> datetime | None:
        params = {"skip": list(skip)}

        def query(conn: Connection) -> datetime | None:
            return from_db(conn.execute(_NEXT_DUE, params).scalar())

        return await self._read(query)

    async def list(self, out_trade_no: str = "") -> list[Notification]:
        statement = select(notifications).order_by(notifications.c.created_at, notifications.c.id)
        if out_trade_no:
            statement = statement.where(notifications.c.out_trade_no == out_trade_no)

        def query(conn: Connection) -> list[Notification]:
            return [_notification(row) for row in conn.execute(statement).mappings()]

        return await self._read(query)


class SqlMessageRepository(SqlRepository):
    __slots__ = ()

    def send(self, message: TemplateMessage) -> Staged[TemplateMessage]:
        """Stage a send. With an idempotency key already used, the first message is kept, its
        ``send_count`` goes up by one, and it is the result; otherwise ``message`` is."""
        values = _message_values(message)
        result: Staged[TemplateMessage] = Staged()

        def write(conn: Connection) -> None:
            if not message.idempotency_key:
                conn.execute(_INSERT_MESSAGE, values)
                result.set(message)
                return
            row = conn.execute(_SEND_ONCE[conn.dialect.name], values).mappings().one()
            result.set(_message(row))

        self._stage(write)
        return result

    async def list(
        self, openid: str = "", after: tuple[datetime, str] | None = None, limit: int | None = None
    ) -> list[TemplateMessage]:
        columns = template_messages.c
        statement = select(template_messages).order_by(columns.sent_at, columns.msgid)
        if openid:
            statement = statement.where(columns.openid == openid)
        if after is not None:
            sent_at = to_db(after[0])
            statement = statement.where(
                (columns.sent_at > sent_at) | ((columns.sent_at == sent_at) & (columns.msgid > after[1]))
            )
        if limit is not None:
            statement = statement.limit(limit)

        def query(conn: Connection) -> list[TemplateMessage]:
            return [_message(row) for row in conn.execute(statement).mappings()]

        return await self._read(query)


def _notification_values(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "event_type": n.event_type,
        "out_trade_no": n.out_trade_no,
        "out_refund_no": n.out_refund_no,
        "body": n.body,
        "created_at": to_db(n.created_at),
        "next_attempt_at": to_db(n.next_attempt_at),
        "status": n.status.value,
        "attempts": n.attempts,
        "last_error": n.last_error,
        "delivered_at": to_db(n.delivered_at),
        "version": n.version,
        "signer": n.signer,
        "notify_url": n.notify_url,
    }


def _delivery_values(n: Notification) -> dict[str, Any]:
    """What an attempt changes (the rest of a notification never does)."""
    return {
        "next_attempt_at": to_db(n.next_attempt_at),
        "status": n.status.value,
        "attempts": n.attempts,
        "last_error": n.last_error,
        "delivered_at": to_db(n.delivered_at),
    }


def _notification(row: Any) -> Notification:
    return Notification(
        id=row["id"],
        event_type=row["event_type"],
        out_trade_no=row["out_trade_no"],
        out_refund_no=row["out_refund_no"],
        body=bytes(row["body"]),
        created_at=from_db_required(row["created_at"]),
        next_attempt_at=from_db_required(row["next_attempt_at"]),
        status=DeliveryStatus(row["status"]),
        attempts=int(row["attempts"]),
        last_error=row["last_error"],
        delivered_at=from_db(row["delivered_at"]),
        signer=row["signer"],
        notify_url=row["notify_url"],
        version=int(row["version"]),
    )


def _message_values(m: TemplateMessage) -> dict[str, Any]:
    return {
        "msgid": m.msgid,
        "openid": m.openid,
        "template_id": m.template_id,
        "data": json.dumps(m.data, ensure_ascii=False, sort_keys=True),
        "idempotency_key": m.idempotency_key or None,
        "sent_at": to_db(m.sent_at),
        "send_count": m.send_count,
        "version": m.version,
    }


def _message(row: Any) -> TemplateMessage:
    return TemplateMessage(
        msgid=row["msgid"],
        openid=row["openid"],
        template_id=row["template_id"],
        data=dict(json.loads(row["data"])),
        idempotency_key=row["idempotency_key"] or "",
        sent_at=from_db_required(row["sent_at"]),
        send_count=int(row["send_count"]),
        version=int(row["version"]),
    )
