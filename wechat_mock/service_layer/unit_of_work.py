"""Unit of work over ``rc_common.db.Database``: nothing is written unless committed.

Reads run at once on a committed snapshot; writes are staged by the repositories and applied
together, in ONE write transaction (``Database.write``), by ``commit()``: the transaction is a
short burst that never waits on the event loop. Because the reads are not inside it, each staged
write is guarded (see :mod:`wechat_mock.adapters.staging`) and a lost race surfaces as
``Conflict``, which ``retrying`` answers by re-running the use case on fresh reads.

After a commit that added notifications or refunds, ``on_commit`` is told which, with when each
is due (so the notifier and the refund settler wake at once, knowing what is due, instead of
polling).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from rc_common.db import Database
from rc_common.logs import get_logger
from wechat_mock.adapters.delivery_repos import MessageRepository, NotificationRepository
from wechat_mock.adapters.repositories import OrderRepository, RefundRepository
from wechat_mock.adapters.staging import Conflict, Due, Duplicate, Pending, Write

__all__ = ["Conflict", "Duplicate", "UnitOfWork", "UnitOfWorkFactory", "retrying"]

log = get_logger("wechat.uow")

T = TypeVar("T")
#: Told after a commit the rows it added for the background workers, by kind.
OnCommit = Callable[[Mapping[str, Sequence[Due]]], None]

#: PostgreSQL's answers to a lost race between transactions: serialization failure, deadlock.
RACE_SQLSTATES = frozenset({"40001", "40P01"})


class UnitOfWork:
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
        self.orders = OrderRepository(db, self._pending)
        self.refunds = RefundRepository(db, self._pending)
        self.notifications = NotificationRepository(db, self._pending)
        self.messages = MessageRepository(db, self._pending)

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pending.writes.clear()  # not committed: nothing of it is written
        self._pending.added.clear()

    async def commit(self) -> None:
        """Apply every staged write in one transaction; ``Conflict`` if a guard found a lost race."""
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


class UnitOfWorkFactory:
    """Makes units of work: ``uow()`` to write, ``uow(readonly=True)`` to read; background workers
    pass ``label`` so that their commits are counted apart (``Database.stats.labelled``)."""

    def __init__(self, db: Database, on_commit: OnCommit | None = None) -> None:
        self.db = db
        self.on_commit = on_commit

    def __call__(self, *, readonly: bool = False, label: str = "") -> UnitOfWork:
        return UnitOfWork(self.db, readonly=readonly, on_commit=self.on_commit, label=label)


async def retrying(operation: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """Run a use case, re-running it when a concurrent writer won the race (``Conflict``)."""
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except Conflict as exc:
            if attempt == attempts:
                raise
            log.info("write_conflict_retried", attempt=attempt, detail=str(exc)[:200])
    raise AssertionError("unreachable")
