"""The SQL unit of work over ``rc_common.db.Database``: the repositories stage guarded writes
(``staging``) and ``commit`` runs them in one ``Database.write``, a short burst that never waits on
the event loop. The database's answers to a lost race (a taken key, a serialization failure or a
deadlock) become the service layer's ``Conflict``, so no use case sees SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from rc_common.db import Database
from rc_common.migrations import upgrade
from wechat_mock.adapters.delivery_repos import SqlMessageRepository, SqlNotificationRepository
from wechat_mock.adapters.repositories import SqlOrderRepository, SqlRefundRepository
from wechat_mock.adapters.staging import Pending, Write
from wechat_mock.migrations import SCHEMA
from wechat_mock.service_layer.ports import Conflict
from wechat_mock.service_layer.unit_of_work import OnCommit, UnitOfWork

#: PostgreSQL's answers to a lost race between transactions: serialization failure, deadlock.
RACE_SQLSTATES = frozenset({"40001", "40P01"})


class SqlUnitOfWork(UnitOfWork):
    __slots__ = (
        "_db",
        "_label",
        "_on_commit",
        "_pending",
        "_readonly",
        "messages",
        "notifications",
        "orders",
        "refunds",
    )

    def __init__(
        self, db: Database, *, readonly: bool = False, on_commit: OnCommit | None = None, label: str = ""
    ) -> None:
        self._db = db
        self._label = label
        self._readonly = readonly
        self._on_commit = on_commit
        self._pending = Pending()
        self.orders = SqlOrderRepository(db, self._pending)
        self.refunds = SqlRefundRepository(db, self._pending)
        self.notifications = SqlNotificationRepository(db, self._pending)
        self.messages = SqlMessageRepository(db, self._pending)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pending.writes.clear()  # not committed: nothing of it is written
        self._pending.added.clear()

    async def commit(self) -> None:
        writes, self._pending.writes = self._pending.writes, []
        if writes:
            assert not self._readonly, "a read-only unit of work staged writes"
            try:
                await self._db.write(_unit(writes), label=self._label)
            except IntegrityError as exc:
                raise Conflict(str(exc.orig)) from exc
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) in RACE_SQLSTATES:
                    raise Conflict(str(exc.orig)) from exc
                raise
        added, self._pending.added = self._pending.added, {}
        if added and self._on_commit is not None:
            self._on_commit(added)


def _unit(writes: list[Write]) -> Callable[[Connection], None]:
    def unit(conn: Connection) -> None:
        for write in writes:
            write(conn)

    return unit


class SqlUnitOfWorkFactory:
    """``UnitOfWorkFactory`` over one database; ``on_commit`` is plugged in by ``bootstrap`` once the
    workers it wakes exist."""

    def __init__(self, db: Database, on_commit: OnCommit | None = None) -> None:
        self.db = db
        self.on_commit = on_commit

    def __call__(self, *, readonly: bool = False, label: str = "") -> UnitOfWork:
        return SqlUnitOfWork(self.db, readonly=readonly, on_commit=self.on_commit, label=label)


async def create_schema(db: Database) -> None:
    """Migrate ``db`` to this version's schema (what ``python -m wechat_mock migrate`` does; for
    tests and tools: the simulator only checks the schema at start)."""
    await upgrade(db, SCHEMA)
