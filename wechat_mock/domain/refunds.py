"""Refunds and their statuses, as WeChat Pay APIv3 has them.

A refund is *accepted* (PROCESSING) when created; the bank settles it later. The simulator decides
at acceptance when (``due_at``) and how (``outcome``) it will settle, and stores both, so a restart
settles it just the same.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from rc_common.errors import Refused
from rc_common.transitions import IllegalTransition
from wechat_mock.domain.merchants import Merchant


class RefundStatus(enum.StrEnum):
    """``status`` of a refund."""

    PROCESSING = "PROCESSING"
    """Accepted by WeChat, not yet settled with the bank; the amount is committed to this refund."""
    SUCCESS = "SUCCESS"
    """Settled: the money went back to the customer."""
    CLOSED = "CLOSED"
    """Closed without refunding; the amount is free to refund again."""
    ABNORMAL = "ABNORMAL"
    """Could not reach the customer's account (card closed…); needs the merchant's manual handling.
    The amount stays committed."""


REFUND_TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.PROCESSING: frozenset({RefundStatus.SUCCESS, RefundStatus.CLOSED, RefundStatus.ABNORMAL}),
    RefundStatus.SUCCESS: frozenset(),
    RefundStatus.CLOSED: frozenset(),
    RefundStatus.ABNORMAL: frozenset(),
}

#: Statuses whose amount counts against what remains refundable.
COMMITTING = frozenset({RefundStatus.PROCESSING, RefundStatus.SUCCESS, RefundStatus.ABNORMAL})

EVENT_TYPES = {
    RefundStatus.SUCCESS: ("REFUND.SUCCESS", "退款成功"),
    RefundStatus.ABNORMAL: ("REFUND.ABNORMAL", "退款异常"),
    RefundStatus.CLOSED: ("REFUND.CLOSED", "退款关闭"),
}

USER_RECEIVED_ACCOUNT = "支付用户零钱"


def guard(current: RefundStatus, target: RefundStatus) -> None:
    if target not in REFUND_TRANSITIONS[current]:
        raise IllegalTransition("refund status", str(current), str(target))


@dataclass(frozen=True)
class RefundTerms:
    out_trade_no: str
    refund_fen: int
    total_fen: int


@dataclass
class Refund:
    out_refund_no: str
    refund_id: str
    terms: RefundTerms
    transaction_id: str
    reason: str
    created_at: datetime
    due_at: datetime
    outcome: RefundStatus
    status: RefundStatus = RefundStatus.PROCESSING
    success_time: datetime | None = None
    settled_at: datetime | None = None
    version: int = 0
    #: The merchant of the refunded trade (only its requests find the refund).
    merchant: Merchant = field(kw_only=True)
    #: The refund request's ``notify_url``; '' = the trade's.
    notify_url: str = field(default="", kw_only=True)

    @property
    def out_trade_no(self) -> str:
        return self.terms.out_trade_no

    @property
    def refund_fen(self) -> int:
        return self.terms.refund_fen

    def belongs_to(self, merchant: Merchant) -> bool:
        return self.merchant == merchant

    @property
    def commits_amount(self) -> bool:
        return self.status in COMMITTING

    def check_replay(self, terms: RefundTerms) -> None:
        """The same out_refund_no again: fine when the parameters match (returns this refund)."""
        if terms != self.terms:
            raise Refused(
                "REFUND_NO_CONFLICT",
                f"{self.out_refund_no}: out_refund_no used with other parameters",
            )

    def settle(self, now: datetime, status: RefundStatus | None = None) -> bool:
        """Settle with the planned outcome (or ``status``). False when already settled."""
        if self.status is not RefundStatus.PROCESSING:
            return False
        target = status or self.outcome
        guard(self.status, target)
        self.status = target
        self.settled_at = now
        if target is RefundStatus.SUCCESS:
            self.success_time = now
        return True
