"""Ports: what the use cases need from storage. Adapters implement them (SQL), tests may fake them.

Reads (``async``) answer at once from committed data. Writes (plain methods) are only staged:
nothing of them reaches the database before ``commit``, which applies them all in one write
transaction, in the order they were staged, or none of them. So a use case reads what it needs
first, decides, then stages; it never reads back its own staged writes. The service's per-card and
per-order locks keep anyone else from changing what was read before the commit; each staged save
still checks the version it read, as the last fence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import NamedTuple, Protocol

from card_service.domain.cards import Card
from card_service.domain.consumptions import Consumption
from card_service.domain.journal import JournalEntry
from card_service.domain.recharges import PreRecharge
from card_service.domain.rules import RechargeRule


class CardRepository(Protocol):
    async def get(self, card_no: str) -> Card | None: ...
    def add(self, card: Card) -> None:
        """Stages the new card; ``commit`` raises ``AlreadyExists`` when its number is taken."""
        ...
    def save(self, card: Card) -> None: ...


class StartView(NamedTuple):
    """What starting a pre-recharge decides on, read together."""

    #: The order number's stored pre-recharge (a replay); when set, the rest is not read.
    existing: PreRecharge | None
    card: Card | None
    #: Sum of credit amounts of the card's RECHARGING pre-recharges (the balance cap counts them).
    pending_fen: int


class RechargeRepository(Protocol):
    async def get(self, order_no: str) -> PreRecharge | None: ...
    async def start_view(self, order_no: str, card_no: str) -> StartView: ...
    async def get_with_card(self, order_no: str) -> tuple[PreRecharge, Card] | None:
        """The pre-recharge and its card in one read; None for a tombstone or an unknown order."""
        ...
    def add(self, recharge: PreRecharge) -> None: ...
    def save(self, recharge: PreRecharge) -> None: ...
    async def pending_credit_fen(self, card_no: str) -> int: ...


class ConsumptionRepository(Protocol):
    async def get(self, request_id: str) -> Consumption | None: ...
    def add(self, consumption: Consumption) -> None: ...
    def save(self, consumption: Consumption) -> None: ...


class JournalRepository(Protocol):
    def append(self, entries: Sequence[JournalEntry]) -> None: ...
    async def page(self, card_no: str, after_entry_id: int, limit: int) -> list[JournalEntry]: ...
    async def total_fen(self, card_no: str) -> int: ...
    async def day_page(
        self, start: datetime, end: datetime, merchant_id: str, after_entry_id: int, limit: int
    ) -> list[tuple[JournalEntry, str]]: ...


class RuleRepository(Protocol):
    async def current(self, merchant_id: str) -> RechargeRule | None:
        """The merchant's latest rule version; None before the merchant set any."""
        ...
    def add(self, rule: RechargeRule) -> None: ...


class UnitOfWork(Protocol):
    """One write transaction: the staged writes are dropped on exit unless ``commit`` was awaited."""

    cards: CardRepository
    recharges: RechargeRepository
    consumptions: ConsumptionRepository
    journal: JournalRepository
    rules: RuleRepository

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None:
        """Applies every staged write in one transaction, or none (raising why)."""
        ...


#: ``uow_factory(readonly)`` opens a unit of work; readonly ones never write.
UnitOfWorkFactory = Callable[[bool], UnitOfWork]


class StaleWrite(Exception):
    """An optimistic-concurrency check failed: someone changed the row since it was read."""


class AlreadyExists(Exception):
    """An insert met a stored row with the same key (e.g. a card number already taken)."""
