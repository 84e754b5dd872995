"""Unit of work: one database transaction that rolls back unless committed.

    async with uow_factory() as uow:
        order = await uow.orders.get(order_no)
        order.transition(...)
        await uow.orders.save(order)
        await uow.commit()

Never hold one open across a call to another system: persist the intent, commit, call out, record
the outcome in a new unit of work.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from rc_common.db import Database
from recharge_service.adapters.anomalies import AnomaliesRepository
from recharge_service.adapters.leases import OrderLeases
from recharge_service.adapters.repository import (
    OrdersRepository,
    OutboxRepository,
    PaymentsRepository,
    TimelineRepository,
)


class UnitOfWork:
    orders: OrdersRepository
    payments: PaymentsRepository
    timeline: TimelineRepository
    outbox: OutboxRepository
    leases: OrderLeases
    anomalies: AnomaliesRepository

    def __init__(self, db: Database, *, readonly: bool = False) -> None:
        self._db = db
        self._readonly = readonly
        self._stack: contextlib.AsyncExitStack | None = None
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        self._stack = contextlib.AsyncExitStack()
        self._session = await self._stack.enter_async_context(self._db.session(readonly=self._readonly))
        self.timeline = TimelineRepository(self._session)
        self.outbox = OutboxRepository(self._session)
        self.payments = PaymentsRepository(self._session)
        self.orders = OrdersRepository(self._session, self.timeline, self.outbox)
        self.leases = OrderLeases(self._session)
        self.anomalies = AnomaliesRepository(self._session)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._stack is not None
        await self._stack.__aexit__(exc_type, exc, tb)  # rolls back what was not committed

    async def commit(self) -> None:
        assert self._session is not None
        await self._session.commit()


UowFactory = Callable[..., UnitOfWork]


def uow_factory(db: Database) -> UowFactory:
    def make(*, readonly: bool = False) -> UnitOfWork:
        return UnitOfWork(db, readonly=readonly)

    return make


@contextlib.asynccontextmanager
async def reading(make: UowFactory) -> AsyncIterator[UnitOfWork]:
    async with make(readonly=True) as uow:
        yield uow
