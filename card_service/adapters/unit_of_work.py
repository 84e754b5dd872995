"""The SQL unit of work: one ``rc_common.db.Database`` session, rolled back unless committed."""

from __future__ import annotations

import contextlib
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from card_service.adapters import repositories as repos
from card_service.adapters.tables import metadata
from card_service.service_layer.ports import (
    CardRepository,
    ConsumptionRepository,
    JournalRepository,
    RechargeRepository,
    RuleRepository,
    UnitOfWork,
    UnitOfWorkFactory,
)
from rc_common.db import Database


class SqlUnitOfWork:
    cards: CardRepository
    recharges: RechargeRepository
    consumptions: ConsumptionRepository
    journal: JournalRepository
    rules: RuleRepository

    def __init__(self, db: Database, *, readonly: bool = False) -> None:
        self._db = db
        self._readonly = readonly
        self._stack = contextlib.AsyncExitStack()
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> UnitOfWork:
        session = await self._stack.enter_async_context(self._db.session(readonly=self._readonly))
        self._session = session
        self.cards = repos.SqlCardRepository(session)
        self.recharges = repos.SqlRechargeRepository(session)
        self.consumptions = repos.SqlConsumptionRepository(session)
        self.journal = repos.SqlJournalRepository(session)
        self.rules = repos.SqlRuleRepository(session)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._session = None
        await self._stack.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        if self._readonly:
            raise RuntimeError("a read-only unit of work cannot commit")
        assert self._session is not None, "commit outside the unit of work"
        await self._session.commit()


def uow_factory(db: Database) -> UnitOfWorkFactory:
    def open_uow(readonly: bool) -> UnitOfWork:
        return SqlUnitOfWork(db, readonly=readonly)

    return open_uow


async def create_schema(db: Database) -> None:
    """Creates missing tables (the simulator has no migrations; its schema only grows)."""
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
