"""The journal: every balance change of a card, append-only, with the balance after it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class JournalKind(enum.Enum):
    """Why a card's balance moved."""

    #: The pay amount of a confirmed pre-recharge (positive).
    RECHARGE_PRINCIPAL = "RECHARGE_PRINCIPAL"
    #: The bonus fixed at pre-recharge, credited with the principal (positive).
    RECHARGE_BONUS = "RECHARGE_BONUS"
    #: A spend (negative).
    CONSUME = "CONSUME"
    #: A spend given back (positive).
    CONSUME_REVERSAL = "CONSUME_REVERSAL"


@dataclass(frozen=True)
class JournalEntry:
    """One balance change. ``amount_fen`` is signed; ``entry_id`` is set once stored."""

    card_no: str
    kind: JournalKind
    amount_fen: int
    balance_after_fen: int
    #: Order number for recharges, request id for consumes.
    business_key: str
    created_at: datetime
    entry_id: int | None = None
