"""Staged writes: what a unit of work will write, kept in memory until its commit.

Each staged write is a plain function of a synchronous connection. ``WriteBatch.take`` joins
them into one unit that ``Database.write`` runs back to back inside one write transaction, so the
transaction never waits on the event loop. The checks that used to guard a write at the moment it was made
run inside it now: a versioned update that changes no row, or an insert whose key is taken,
raises there, which rolls the whole batch back and reaches the caller of ``commit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from card_service.service_layer.ports import AlreadyExists, StaleWrite

Write = Callable[[sa.Connection], None]


class Versioned(Protocol):
    version: int


class WriteBatch:
    """The writes of one unit of work, in the order they were staged."""

    __slots__ = ("readonly", "writes")

    def __init__(self, *, readonly: bool) -> None:
        self.readonly = readonly
        self.writes: list[Write] = []

    def stage(self, write: Write) -> None:
        if self.readonly:
            raise RuntimeError("a read-only unit of work cannot write")
        self.writes.append(write)

    def take(self) -> Write | None:
        """The staged writes as one unit for ``Database.write`` (None if there are none); the
        batch is empty afterwards."""
        writes, self.writes = self.writes, []
        if not writes:
            return None

        def unit(conn: sa.Connection) -> None:
            for write in writes:
                write(conn)

        return unit


def versioned_update(table: sa.Table, key: str) -> sa.Update:
    """``UPDATE table SET … WHERE <key> = :key AND version = :read_version`` (SET from the params)."""
    return sa.update(table).where(
        table.c[key] == sa.bindparam("key"), table.c.version == sa.bindparam("read_version")
    )


def stage_save(
    batch: WriteBatch, update: sa.Update, key: str, entity: Versioned, values: dict[str, Any]
) -> None:
    """Stages the optimistic update of ``entity`` and moves it to its next version."""
    params = {**values, "key": key, "read_version": entity.version, "version": entity.version + 1}
    entity.version += 1

    def write(conn: sa.Connection) -> None:
        if conn.execute(update, params).rowcount != 1:
            raise StaleWrite(f"{update.table}: row {key} changed since it was read")

    batch.stage(write)


class InsertIfAbsent:
    """``INSERT … ON CONFLICT DO NOTHING`` in the connection's dialect: one statement, no SELECT."""

    def __init__(self, table: sa.Table) -> None:
        self._statements = {
            "sqlite": sqlite.insert(table).on_conflict_do_nothing(),
            "postgresql": postgresql.insert(table).on_conflict_do_nothing(),
        }

    def stage(self, batch: WriteBatch, key: str, values: dict[str, Any]) -> None:
        """Stages the insert; the commit raises ``AlreadyExists`` when ``key`` is taken."""
        def write(conn: sa.Connection) -> None:
            if conn.execute(self._statements[conn.dialect.name], values).rowcount != 1:
                raise AlreadyExists(key)

        batch.stage(write)


def stage_insert(batch: WriteBatch, statement: sa.Insert, rows: list[dict[str, Any]]) -> None:
    """Stages a plain insert of ``rows``; a key collision raises the database's IntegrityError."""
    def write(conn: sa.Connection) -> None:
        conn.execute(statement, rows[0] if len(rows) == 1 else rows)

    if rows:
        batch.stage(write)
