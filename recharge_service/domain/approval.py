"""Four eyes: an operator's action that waits for a second person. Pure Python.

States, in business words:

- PENDING: an operator asked for the action (a refund above the four-eyes threshold); nothing ran.
  At most one PENDING approval per order and action.
- APPROVED: another operator, holding the approver role, approved it; the action then ran through
  the same fenced path as any operator action, and ``outcome`` says what it did — or, when the order
  was no longer refundable by then, the refund path's own refusal (e.g. ``refused CARD_CREDITED``).
- REJECTED: another operator refused it; nothing ran.
- EXPIRED: the order moved on before anyone decided. Part of the contract; this version never
  expires an approval (a decision always runs the refund path's own checks, see APPROVED).

Only PENDING moves, once, to one of the others (``decide``); the one who asked never decides.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from rc_common.transitions import IllegalTransition


class ApprovalStatus(enum.StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


A = ApprovalStatus
#: Every legal move of an approval (the order's own moves are ``order.TRANSITIONS``).
APPROVAL_MOVES: dict[ApprovalStatus, frozenset[ApprovalStatus]] = {
    A.PENDING: frozenset({A.APPROVED, A.REJECTED, A.EXPIRED}),
    A.APPROVED: frozenset(),
    A.REJECTED: frozenset(),
    A.EXPIRED: frozenset(),
}


@dataclass
class Approval:
    """``action``: the resolve action's name (``REFUND``); ``amount_fen``: the order's pay amount
    when it was asked for."""

    approval_id: str
    order_no: str
    merchant_id: str
    action: str
    amount_fen: int
    requested_by: str
    request_reason: str
    requested_at: datetime
    status: ApprovalStatus = A.PENDING
    decided_by: str = ""
    decision_reason: str = ""
    decided_at: datetime | None = None
    outcome: str = ""

    @property
    def pending(self) -> bool:
        return self.status is A.PENDING

    def decide(self, approve: bool, by: str, reason: str, at: datetime, outcome: str = "") -> None:
        """APPROVED (with what the action did) or REJECTED, by ``by``; raises ``IllegalTransition``
        unless PENDING, or when ``by`` is the one who asked (four eyes, not two)."""
        decided = A.APPROVED if approve else A.REJECTED
        if decided not in APPROVAL_MOVES[self.status]:
            raise IllegalTransition(f"approval {self.approval_id}", self.status.name, decided.name)
        if by == self.requested_by:
            raise IllegalTransition(
                f"approval {self.approval_id}", self.status.name, decided.name, ": by the requester"
            )
        self.status = decided
        self.decided_by = by
        self.decision_reason = reason
        self.decided_at = at
        self.outcome = outcome

    def settled_as(self, approve: bool, by: str) -> bool:
        """True when this is already the decision ``by`` asks for again (a replay)."""
        wanted = A.APPROVED if approve else A.REJECTED
        return self.status is wanted and self.decided_by == by
