"""The unit of work over SQL: reads through ``Database.read``, staged writes in one
``Database.write`` (group-committed on SQLite, its own transaction on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from rc_common.db import Database
from recharge_service.adapters.anomalies import AnomaliesRepository
from recharge_service.adapters.approvals import ApprovalsRepository
from recharge_service.adapters.leases import OrderLeases
from recharge_service.adapters.outbox import OutboxRepository
from recharge_service.adapters.repository import (
    OrdersRepository,
    PaymentsRepository,
    Staged,
    TimelineRepository,
    write,
)
from recharge_service.domain.timeline import TimelineEntry
from recharge_service.service_layer.unit_of_work import AbstractUnitOfWork, UowFactory


class SqlUnitOfWork(AbstractUnitOfWork):
    """``node``: this replica's id, stamped on every timeline row the unit writes;
    ``database_clock``: order leases are timed by the database's clock (``adapters/leases.py``)."""

    def __init__(
        self, db: Database, *, node: str = "", readonly: bool = False, database_clock: bool = False
    ) -> None:
        super().__init__(readonly=readonly)
        self._db = db
        self._staged = Staged(node)
        self.orders = OrdersRepository(db, self._staged, database_clock=database_clock)
        self.payments = PaymentsRepository(db, self._staged)
        self.timeline = TimelineRepository(db, self._staged)
        self.outbox = OutboxRepository(db, node)
        self.leases = OrderLeases(db, self._staged, database_clock=database_clock)
        self.anomalies = AnomaliesRepository(db)
        self.approvals = ApprovalsRepository(db, self._staged)

    def _begin(self) -> None:
        self._staged.drain()

    def _discard(self) -> None:
        self._staged.drain()

    def _stage_entry(self, entry: TimelineEntry, after: Callable[[], None]) -> None:
        self._staged.note(entry, after)

    async def _apply(self, pending: list[TimelineEntry]) -> list[Callable[[], None]]:
        staged = self._staged.drain()
        if not staged and not pending:
            return staged.after

        def unit(conn: Connection) -> None:
            staged.apply(conn, pending)

        await write(self._db, unit)
        return staged.after


def uow_factory(db: Database, *, node: str = "", database_clock: bool = False) -> UowFactory:
    """Units of work on ``db`` whose timeline rows say they were written by replica ``node``;
    ``database_clock``: leases timed by the database (the service; tests move their own clock)."""

    def make(*, readonly: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(db, node=node, readonly=readonly, database_clock=database_clock)

    return make
