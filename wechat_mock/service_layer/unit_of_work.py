"""Unit of work over ``rc_common.db.Database``: one transaction, rolled back unless committed.

After a commit that added notifications or refunds, ``on_commit`` is told which (so the notifier
and the refund settler wake at once instead of polling).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rc_common.db import Database
from rc_common.logs import get_logger
from wechat_mock.adapters.delivery_repos import MessageRepository, NotificationRepository
from wechat_mock.adapters.repositories import Conflict, OrderRepository, RefundRepository

log = get_logger("wechat.uow")

T = TypeVar("T")
OnCommit = Callable[[frozenset[str]], None]


class UnitOfWork:
    orders: OrderRepository
    refunds: RefundRepository
    notifications: NotificationRepository
    messages: MessageRepository

    def __init__(self, db: Database, *, readonly: bool = False, on_commit: OnCommit | None = None) -> None:
        self._db = db
        self._readonly = readonly
        self._on_commit = on_commit
        self._context: Any = None
        self._session: AsyncSession | None = None
        self._touched: set[str] = set()

    async def __aenter__(self) -> UnitOfWork:
        self._context = self._db.session(readonly=self._readonly)
        self._session = await self._context.__aenter__()
        self._touched = set()
        self.orders = OrderRepository(self._session, self._touched)
        self.refunds = RefundRepository(self._session, self._touched)
        self.notifications = NotificationRepository(self._session, self._touched)
        self.messages = MessageRepository(self._session, self._touched)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # rc_common.db rolls back whatever was not committed.
        await self._context.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        assert self._session is not None, "commit outside 'async with'"
        try:
            await self._session.commit()
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from exc
        touched = frozenset(self._touched)
        self._touched.clear()
        if touched and self._on_commit is not None:
            self._on_commit(touched)


class UnitOfWorkFactory:
    """Makes units of work: ``uow()`` to write, ``uow(readonly=True)`` to read."""

    def __init__(self, db: Database, on_commit: OnCommit | None = None) -> None:
        self.db = db
        self.on_commit = on_commit

    def __call__(self, *, readonly: bool = False) -> UnitOfWork:
        return UnitOfWork(self.db, readonly=readonly, on_commit=self.on_commit)


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
