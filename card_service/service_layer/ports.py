"""Ports: what the use cases need from storage. Adapters implement them (SQL), tests may fake them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol

from card_service.domain.cards import Card
from card_service.domain.consumptions import Consumption
from card_service.domain.journal import JournalEntry
from card_service.domain.recharges import PreRecharge
from card_service.domain.rules import RechargeRule


class CardRepository(Protocol):
    async def get(self, card_no: str, *, for_update: bool = False) -> Card | None: ...
    async def add(self, card: Card) -> None: ...
    async def save(self, card: Card) -> None: ...


class RechargeRepository(Protocol):
    async def get(self, order_no: str) -> PreRecharge | None: ...
    async def get_with_card(self, order_no: str) -> tuple[PreRecharge, Card] | None:
        """The pre-recharge and its card (locked for update) in one read; None for a tombstone."""
        ...
    async def add(self, recharge: PreRecharge) -> None: ...
    async def save(self, recharge: PreRecharge) -> None: ...
    async def pending_credit_fen(self, card_no: str) -> int: ...


class ConsumptionRepository(Protocol):
    async def get(self, request_id: str) -> Consumption | None: ...
    async def add(self, consumption: Consumption) -> None: ...
    async def save(self, consumption: Consumption) -> None: ...


class JournalRepository(Protocol):
    async def append(self, entries: Sequence[JournalEntry]) -> None: ...
    async def page(self, card_no: str, after_entry_id: int, limit: int) -> list[JournalEntry]: ...
    async def total_fen(self, card_no: str) -> int: ...


class RuleRepository(Protocol):
    async def current(self) -> RechargeRule | None: ...
    async def add(self, rule: RechargeRule) -> None: ...


class UnitOfWork(Protocol):
    """One transaction: rolls back on exit unless ``commit`` was awaited."""

    cards: CardRepository
    recharges: RechargeRepository
    consumptions: ConsumptionRepository
    journal: JournalRepository
    rules: RuleRepository

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...


#: ``uow_factory(readonly)`` opens a unit of work; readonly ones never write.
UnitOfWorkFactory = Callable[[bool], UnitOfWork]


class StaleWrite(Exception):
    """An optimistic-concurrency check failed: someone changed the row since it was read."""
