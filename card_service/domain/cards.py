"""Cards: status, balance, and the only ways a balance may change (each one a journal entry)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from card_service.domain.journal import JournalEntry, JournalKind
from card_service.domain.transitions import IllegalTransition
from rc_common.errors import Refused


class CardStatus(enum.Enum):
    """A card's life."""

    #: Can be topped up and spent.
    ACTIVE = "ACTIVE"
    #: Temporarily blocked by an operator: no top-up, no spend; can be unfrozen.
    FROZEN = "FROZEN"
    #: Final: nothing moves its balance again.
    CLOSED = "CLOSED"


CARD_TRANSITIONS: Mapping[CardStatus, frozenset[CardStatus]] = {
    CardStatus.ACTIVE: frozenset({CardStatus.FROZEN, CardStatus.CLOSED}),
    CardStatus.FROZEN: frozenset({CardStatus.ACTIVE, CardStatus.CLOSED}),
    CardStatus.CLOSED: frozenset(),
}


def refuse_inactive(status: CardStatus, card_no: str) -> None:
    """The definitive refusal for a card that is not ACTIVE."""
    if status is CardStatus.FROZEN:
        raise Refused("CARD_FROZEN", f"card {card_no} is frozen", card_no=card_no)
    if status is CardStatus.CLOSED:
        raise Refused("CARD_CLOSED", f"card {card_no} is closed", card_no=card_no)


@dataclass
class Card:
    #: Globally unique across merchants.
    card_no: str
    #: The merchant whose card program issued the card; it never changes.
    merchant_id: str
    status: CardStatus
    balance_fen: int
    holder_name: str
    created_at: datetime
    updated_at: datetime
    #: Optimistic concurrency: bumped on every stored change.
    version: int = 0

    @classmethod
    def open(cls, card_no: str, merchant_id: str, holder_name: str, now: datetime) -> Card:
        return cls(card_no, merchant_id, CardStatus.ACTIVE, 0, holder_name, now, now)

    def visible_to(self, merchant_id: str) -> bool:
        """Whether a request naming ``merchant_id`` may see this card ('' names no merchant and
        sees every card); to any other merchant the card does not exist."""
        return not merchant_id or merchant_id == self.merchant_id

    def ensure_active(self) -> None:
        refuse_inactive(self.status, self.card_no)

    def credit(self, kind: JournalKind, amount_fen: int, business_key: str, now: datetime) -> JournalEntry:
        """Adds ``amount_fen`` (> 0) and returns the journal entry that records it."""
        if amount_fen <= 0:
            raise ValueError(f"credit must be positive, got {amount_fen}")
        return self._move(kind, amount_fen, business_key, now)

    def spend(self, amount_fen: int, business_key: str, now: datetime) -> JournalEntry:
        """Takes ``amount_fen`` (> 0); never below zero; the card must be ACTIVE."""
        if amount_fen <= 0:
            raise ValueError(f"spend must be positive, got {amount_fen}")
        self.ensure_active()
        if amount_fen > self.balance_fen:
            raise Refused(
                "INSUFFICIENT_BALANCE",
                f"card {self.card_no} has {self.balance_fen} fen, cannot spend {amount_fen}",
                card_no=self.card_no,
            )
        return self._move(JournalKind.CONSUME, -amount_fen, business_key, now)

    def _move(self, kind: JournalKind, amount_fen: int, business_key: str, now: datetime) -> JournalEntry:
        self.balance_fen += amount_fen
        self.updated_at = now
        return JournalEntry(self.card_no, kind, amount_fen, self.balance_fen, business_key, now)

    def freeze(self, now: datetime) -> None:
        """ACTIVE -> FROZEN; FROZEN stays; CLOSED is refused."""
        self._change(CardStatus.FROZEN, now)

    def unfreeze(self, now: datetime) -> None:
        """FROZEN -> ACTIVE; ACTIVE stays; CLOSED is refused."""
        self._change(CardStatus.ACTIVE, now)

    def close(self, now: datetime) -> None:
        """ACTIVE or FROZEN -> CLOSED (final); CLOSED stays."""
        if self.status is CardStatus.CLOSED:
            return
        self._change(CardStatus.CLOSED, now)

    def _change(self, target: CardStatus, now: datetime) -> None:
        if self.status is target:
            return
        if self.status is CardStatus.CLOSED:
            refuse_inactive(self.status, self.card_no)
        if target not in CARD_TRANSITIONS[self.status]:
            raise IllegalTransition("card", self.status.name, target.name)
        self.status = target
        self.updated_at = now
