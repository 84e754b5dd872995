"""The unit of work port: nothing is written unless committed.

Reads run at once on committed data; writes are staged by the repositories (``ports``) and applied
together, in ONE write transaction, by ``commit()``. Because the reads are not inside it, each
staged write is guarded and a lost race surfaces as ``Conflict``, which ``retrying`` answers by
re-running the use case on fresh reads.

After a commit that added notifications or refunds, ``on_commit`` is told which, with when each
is due (so the notifier and the refund settler wake at once, knowing what is due, instead of
polling). The SQL unit of work, wired in ``bootstrap``, implements it over ``rc_common.db.Database``.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Protocol, Self, TypeVar

from rc_common.logs import get_logger
from wechat_mock.service_layer.ports import (
    Conflict,
    Due,
    MessageRepository,
    NotificationRepository,
    OrderRepository,
    RefundRepository,
)

log = get_logger("wechat.uow")

T = TypeVar("T")
#: Told after a commit the rows it added for the background workers, by kind (``ports.NOTIFICATIONS``,
#: ``ports.REFUNDS``).
OnCommit = Callable[[Mapping[str, Sequence[Due]]], None]


class UnitOfWork(abc.ABC):
    """One write transaction: what was staged is dropped on exit unless ``commit`` was awaited."""

    __slots__ = ()

    orders: OrderRepository
    refunds: RefundRepository
    notifications: NotificationRepository
    messages: MessageRepository

    async def __aenter__(self) -> Self:
        return self

    @abc.abstractmethod
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    @abc.abstractmethod
    async def commit(self) -> None:
        """Apply every staged write in one transaction; ``Conflict`` if a guard found a lost race."""


class UnitOfWorkFactory(Protocol):
    """Makes units of work: ``uow()`` to write, ``uow(readonly=True)`` to read; background workers
    pass ``label`` so that their commits are counted apart (``Database.stats.labelled``)."""

    def __call__(self, *, readonly: bool = False, label: str = "") -> UnitOfWork: ...


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
