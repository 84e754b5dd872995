"""The write path under the repositories.

Reads run at once on a committed snapshot (``Database.read``). Writes are *staged*: each is a plain
function over a synchronous connection, kept until the unit of work commits, and then all of them
run back to back in ONE write transaction (``Database.write``), which never waits on the event
loop while it holds the write lock. Since the reads that informed a decision are not inside that
transaction, every staged write is *guarded*: a versioned or conditional statement that finds the
row no longer in the state the use case decided on raises the service layer's ``Conflict`` inside
the transaction, which undoes all of the unit, and the use case is re-run on fresh reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Column, Connection, Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from rc_common.db import Database
from wechat_mock.service_layer.ports import Conflict, Due, Duplicate

T = TypeVar("T")
Write = Callable[[Connection], None]


class Pending:
    """What one unit of work will write, and the rows it adds for the background workers, by
    kind (``ports.NOTIFICATIONS``, ``ports.REFUNDS``): told to them after the commit, so that they
    know what is due when without asking the database."""

    __slots__ = ("added", "writes")

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.added: dict[str, list[Due]] = {}


class SqlRepository:
    """Base of the SQL repositories: ``_read`` now, ``_stage`` for the commit."""

    __slots__ = ("_db", "_pending")

    def __init__(self, db: Database, pending: Pending) -> None:
        self._db = db
        self._pending = pending

    async def _read(self, query: Callable[[Connection], T]) -> T:
        return await self._db.read(query)

    def _stage(self, write: Write, kind: str = "", due: Iterable[Due] = ()) -> None:
        """Stage ``write``; ``kind`` and ``due``: the worker rows it adds, and when they are due."""
        self._pending.writes.append(write)
        if kind:
            self._pending.added.setdefault(kind, []).extend(due)


def guarded(conn: Connection, statement: Any, params: Mapping[str, Any], what: str) -> None:
    """Run a versioned/conditional statement that must hit exactly one row, else ``Conflict``."""
    if conn.execute(statement, params).rowcount != 1:
        raise Conflict(f"{what} was changed concurrently")


class InsertNew:
    """``INSERT … ON CONFLICT (key) DO NOTHING``, built once per dialect; a taken key raises
    ``Duplicate`` without aborting the transaction (nor logging an error on PostgreSQL)."""

    def __init__(self, table: Table, key: Column[Any]) -> None:
        self._what = table.name
        self._by_dialect: dict[str, Insert] = {
            "sqlite": sqlite.insert(table).on_conflict_do_nothing(index_elements=[key]),
            "postgresql": postgresql.insert(table).on_conflict_do_nothing(index_elements=[key]),
        }

    def __call__(self, conn: Connection, values: Mapping[str, Any]) -> None:
        if conn.execute(self._by_dialect[conn.dialect.name], values).rowcount != 1:
            raise Duplicate(f"{self._what}: key already taken")


def versioned_update(table: Table, key: Column[Any]) -> Any:
    """``UPDATE table SET … WHERE key = :_key AND version = :_version`` (SET from the params)."""
    return update(table).where(key == bindparam("_key"), table.c.version == bindparam("_version"))


def versioned_params(values: dict[str, Any], key: Any, version: int) -> dict[str, Any]:
    """The params of :func:`versioned_update` that move a row from ``version`` to ``version + 1``."""
    values["version"] = version + 1
    values["_key"] = key
    values["_version"] = version
    return values
