"""Consumptions: spends by the card's holder at a merchant, reversible once."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from card_service.domain.transitions import IllegalTransition


class ConsumptionStatus(enum.Enum):
    #: Spent: the CONSUME journal entry took the amount off the balance.
    COMPLETED = "COMPLETED"
    #: Given back once by a CONSUME_REVERSAL journal entry; final.
    REVERSED = "REVERSED"


TRANSITIONS: Mapping[ConsumptionStatus, frozenset[ConsumptionStatus]] = {
    ConsumptionStatus.COMPLETED: frozenset({ConsumptionStatus.REVERSED}),
    ConsumptionStatus.REVERSED: frozenset(),
}


@dataclass
class Consumption:
    request_id: str
    card_no: str
    amount_fen: int
    merchant_id: str
    status: ConsumptionStatus
    #: The card's balance right after this consumption (or after its reversal).
    balance_after_fen: int
    created_at: datetime
    updated_at: datetime
    version: int = 0

    def same_request(self, card_no: str, amount_fen: int, merchant_id: str) -> bool:
        return (self.card_no, self.amount_fen, self.merchant_id) == (card_no, amount_fen, merchant_id)

    def ensure_reversible(self) -> None:
        if ConsumptionStatus.REVERSED not in TRANSITIONS[self.status]:
            raise IllegalTransition("consumption", self.status.name, ConsumptionStatus.REVERSED.name)

    def reverse(self, balance_after_fen: int, now: datetime) -> None:
        self.ensure_reversible()
        self.status = ConsumptionStatus.REVERSED
        self.balance_after_fen = balance_after_fen
        self.updated_at = now
