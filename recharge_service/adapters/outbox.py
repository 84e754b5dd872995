"""The outbox: follow-ups waiting for delivery, claimed and settled a batch at a time.

``add`` is staged with the state change that caused the follow-up (``OrdersRepository.save``
does it). ``claim`` is the only place that decides who delivers a row: one set-based
``UPDATE … WHERE id IN (due rows) RETURNING``, its own short write (on PostgreSQL the due rows are
picked ``FOR UPDATE OF outbox SKIP LOCKED``, so concurrent dispatchers skip each other's rows).
Merchants take turns (each merchant's first due row, then each one's second, …: a window
``ROW_NUMBER() OVER (PARTITION BY merchant_id …)``), the oldest due first within a merchant — so
one merchant's backlog (say, its callback endpoint down for an hour) cannot hold back another
merchant's follow-ups beyond one batch. ``finish``
records the results of a whole batch in one write, each row only if its lease is still ours,
with the row's delivery attempt on the order's timeline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update

from rc_common.db import Database
from recharge_service.adapters.orm import UtcDateTime, outbox
from recharge_service.adapters.repository import insert_timeline, read, write
from recharge_service.service_layer.storage import OutboxRow, Settled

#: How the outbox's own writes are counted (``Database.stats.labelled``): the bench tells them apart.
LABEL = "outbox"


class OutboxRepository:
    def __init__(self, db: Database, node: str = "") -> None:
        self._db = db
        self._node = node  # the replica writing the delivery rows on the timeline

    async def claim(self, owner: str, now: datetime, lease_until: datetime, limit: int) -> list[OutboxRow]:
        """Reserve up to ``limit`` due rows for ``owner`` until ``lease_until`` (one statement)."""
        free = or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now)
        due = and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now, free)
        ranked = (
            select(
                outbox.c.id,
                func.row_number()
                .over(partition_by=outbox.c.merchant_id, order_by=(outbox.c.next_attempt_at, outbox.c.id))
                .label("turn"),
            )
            .where(due)
            .subquery("ranked")
        )
        picked = (
            select(outbox.c.id)
            .join_from(outbox, ranked, ranked.c.id == outbox.c.id)
            .order_by(ranked.c.turn, outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
            # PostgreSQL; SQLite's writer is alone anyway
            .with_for_update(of=outbox, skip_locked=True)
        )
        statement = (
            update(outbox)
            .where(and_(outbox.c.id.in_(picked.scalar_subquery()), due))
            .values(lease_owner=owner, lease_until=lease_until)
            .returning(
                outbox.c.id,
                outbox.c.order_no,
                outbox.c.topic,
                outbox.c.event_id,
                outbox.c.payload,
                outbox.c.attempts,
            )
        )

        anything = select(outbox.c.id).where(due).limit(1)
        if await read(self._db, lambda conn: conn.execute(anything).first()) is None:
            return []  # nothing due: a read, not a write transaction, per idle poll

        def unit(conn: Connection) -> list[OutboxRow]:
            rows = conn.execute(statement).all()
            claimed = [
                OutboxRow(r.id, r.order_no, r.topic, r.event_id, json.loads(r.payload), r.attempts)
                for r in rows
            ]
            return sorted(claimed, key=lambda row: row.id)

        return await write(self._db, unit, label=LABEL)

    async def finish(self, owner: str, settled: Sequence[Settled]) -> list[int]:
        """Record a batch of delivery results, each only where ``owner`` still holds the lease;
        returns the ids recorded (the others were taken over after our lease ran out)."""

        ids = [item.row_id for item in settled]
        ours = select(outbox.c.id).where(and_(outbox.c.id.in_(ids), outbox.c.lease_owner == owner))
        record = (
            update(outbox)
            .where(outbox.c.id == bindparam("row_id"))
            .values(
                status=bindparam("b_status"),
                attempts=bindparam("b_attempts"),
                next_attempt_at=bindparam("b_next_attempt_at", type_=UtcDateTime()),
                last_error=bindparam("b_last_error"),
                lease_owner=None,
                lease_until=None,
            )
        )

        def unit(conn: Connection) -> list[int]:
            held = set(conn.execute(ours.with_for_update()).scalars())
            mine = [item for item in settled if item.row_id in held]
            if mine:
                conn.execute(
                    record,
                    [
                        {
                            "row_id": item.row_id,
                            "b_status": item.status,
                            "b_attempts": item.attempts,
                            "b_next_attempt_at": item.next_attempt_at,
                            "b_last_error": item.last_error[:2000],
                        }
                        for item in mine
                    ],
                )
            insert_timeline(conn, [item.entry for item in mine], self._node)
            return [item.row_id for item in mine]

        return await write(self._db, unit, label=LABEL) if settled else []

    async def for_order(self, order_no: str) -> list[dict[str, Any]]:
        query = select(outbox).where(outbox.c.order_no == order_no).order_by(outbox.c.id)
        rows = await read(self._db, lambda conn: conn.execute(query).mappings().all())
        return [dict(row) for row in rows]
