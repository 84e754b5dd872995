"""Repositories of what the simulator sends: notifications (with their delivery state) and
template messages."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from wechat_mock.adapters.repositories import NOTIFICATIONS, Repository, exclude
from wechat_mock.adapters.tables import (
    from_db,
    from_db_required,
    notifications,
    template_messages,
    to_db,
)
from wechat_mock.domain.messages import TemplateMessage
from wechat_mock.domain.notifications import DeliveryStatus, Notification


class NotificationRepository(Repository):
    async def add(self, notification: Notification) -> None:
        await self._insert(insert(notifications).values(**_notification_values(notification)))
        self._touched.add(NOTIFICATIONS)

    async def get(self, notification_id: str, *, for_update: bool = False) -> Notification | None:
        row = await self._one(select(notifications).where(notifications.c.id == notification_id), for_update)
        return None if row is None else _notification(row)

    async def update(self, notification: Notification) -> None:
        values = _notification_values(notification)
        values["version"] = notification.version + 1
        await self._update(
            update(notifications)
            .where(notifications.c.id == notification.id)
            .where(notifications.c.version == notification.version)
            .values(**values),
            f"notification {notification.id}",
        )
        notification.version += 1

    async def due(self, now: datetime, skip: Collection[str], limit: int) -> list[Notification]:
        rows = await self._session.execute(
            select(notifications)
            .where(notifications.c.status == DeliveryStatus.PENDING.value)
            .where(notifications.c.next_attempt_at <= to_db(now))
            .where(exclude(notifications.c.id, skip))
            .order_by(notifications.c.next_attempt_at, notifications.c.id)
            .limit(limit)
        )
        return [_notification(row) for row in rows.mappings()]

    async def next_due(self, skip: Collection[str]) -> datetime | None:
        value = await self._session.scalar(
            select(func.min(notifications.c.next_attempt_at))
            .where(notifications.c.status == DeliveryStatus.PENDING.value)
            .where(exclude(notifications.c.id, skip))
        )
        return from_db(value)

    async def list(self, out_trade_no: str = "") -> list[Notification]:
        query = select(notifications).order_by(notifications.c.created_at, notifications.c.id)
        if out_trade_no:
            query = query.where(notifications.c.out_trade_no == out_trade_no)
        rows = await self._session.execute(query)
        return [_notification(row) for row in rows.mappings()]


class MessageRepository(Repository):
    async def by_key(self, idempotency_key: str, *, for_update: bool = False) -> TemplateMessage | None:
        row = await self._one(
            select(template_messages).where(template_messages.c.idempotency_key == idempotency_key),
            for_update,
        )
        return None if row is None else _message(row)

    async def add(self, message: TemplateMessage) -> None:
        await self._insert(insert(template_messages).values(**_message_values(message)))

    async def update(self, message: TemplateMessage) -> None:
        values = _message_values(message)
        values["version"] = message.version + 1
        await self._update(
            update(template_messages)
            .where(template_messages.c.msgid == message.msgid)
            .where(template_messages.c.version == message.version)
            .values(**values),
            f"message {message.msgid}",
        )
        message.version += 1

    async def list(self, openid: str = "") -> list[TemplateMessage]:
        query = select(template_messages).order_by(template_messages.c.sent_at, template_messages.c.msgid)
        if openid:
            query = query.where(template_messages.c.openid == openid)
        rows = await self._session.execute(query)
        return [_message(row) for row in rows.mappings()]


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
