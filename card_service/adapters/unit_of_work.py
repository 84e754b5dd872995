"""The SQL unit of work: reads at once, writes staged and applied by one ``Database.write``.

Nothing is written before ``commit``; leaving without it drops the staged writes. ``commit``
hands the whole batch to the database in one hop, so the write transaction holds its lock only
while its statements run back to back (on SQLite it is group-committed with its neighbours).
A unit of work that staged nothing commits without touching the database.
"""

from __future__ import annotations

from types import TracebackType

from card_service.adapters import repositories as repos
from card_service.adapters.staging import WriteBatch
from card_service.migrations import SCHEMA
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
from rc_common.migrations import upgrade


class SqlUnitOfWork:
    cards: CardRepository
    recharges: RechargeRepository
    consumptions: ConsumptionRepository
    journal: JournalRepository
    rules: RuleRepository

    def __init__(self, db: Database, *, readonly: bool = False) -> None:
        self._db = db
        self._batch = WriteBatch(readonly=readonly)
        self.cards = repos.SqlCardRepository(db, self._batch)
        self.recharges = repos.SqlRechargeRepository(db, self._batch)
        self.consumptions = repos.SqlConsumptionRepository(db, self._batch)
        self.journal = repos.SqlJournalRepository(db, self._batch)
        self.rules = repos.SqlRuleRepository(db, self._batch)

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._batch.writes.clear()  # not committed: dropped

    async def commit(self) -> None:
        if self._batch.readonly:
            raise RuntimeError("a read-only unit of work cannot commit")
        unit = self._batch.take()
        if unit is not None:
            await self._db.write(unit)


def uow_factory(db: Database) -> UnitOfWorkFactory:
    def open_uow(readonly: bool) -> UnitOfWork:
        return SqlUnitOfWork(db, readonly=readonly)

    return open_uow


async def create_schema(db: Database) -> None:
    """Migrate ``db`` to this version's schema (what ``python -m card_service migrate`` does; for
    tests and tools: the service only checks the schema at start)."""
    await upgrade(db, SCHEMA)
