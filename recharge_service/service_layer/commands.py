"""Commands (imperative names) and their validation. Every failure names the request field."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from rc_common.errors import InvalidArgument, PermissionDenied
from recharge_service.domain.merchant import check_merchant_id
from recharge_service.domain.order import Channel

CARD_NO = re.compile(r"[0-9]{8,32}")


@dataclass(frozen=True)
class CreateRechargeOrder:
    card_no: str
    pay_amount_fen: int
    channel: int
    idempotency_key: str
    payer_openid: str
    merchant_id: str

    def validated(self) -> tuple[str, int, Channel, str, str]:
        """The checked values, or ``InvalidArgument`` naming the first bad field. Writes nothing."""
        check_merchant_id(self.merchant_id)
        if not CARD_NO.fullmatch(self.card_no):
            raise InvalidArgument("card_no", "must be 8 to 32 digits")
        if self.pay_amount_fen <= 0:
            raise InvalidArgument("pay_amount_fen", "must be a positive number of fen")
        try:
            channel = Channel(self.channel)
        except ValueError:
            raise InvalidArgument("channel", "must be OFFICIAL_ACCOUNT, POS or THIRD_PARTY") from None
        if not 1 <= len(self.idempotency_key) <= 64:
            raise InvalidArgument("idempotency_key", "required, 1 to 64 characters")
        if not 1 <= len(self.payer_openid) <= 128:
            raise InvalidArgument("payer_openid", "required, 1 to 128 characters")
        return self.card_no, self.pay_amount_fen, channel, self.idempotency_key, self.payer_openid


class ResolveAction(enum.IntEnum):
    """Operators' fenced actions (mirrors ``recharge.v1.ResolveAction``)."""

    RETRY_NOW = 1
    REFUND = 2
    CONFIRM_CREDIT = 3


@dataclass(frozen=True)
class ResolveAnomaly:
    order_no: str
    action: int
    operator: str
    reason: str
    #: Optional: when set, another merchant's order is NOT_FOUND.
    merchant_id: str = ""

    def validated(self) -> tuple[str, ResolveAction, str, str]:
        """The checked values, or ``InvalidArgument`` naming the first bad field."""
        if self.merchant_id:
            check_merchant_id(self.merchant_id)
        if not self.order_no:
            raise InvalidArgument("order_no", "required")
        try:
            action = ResolveAction(self.action)
        except ValueError:
            raise InvalidArgument("action", "must be RETRY_NOW, REFUND or CONFIRM_CREDIT") from None
        operator, reason = self.operator.strip(), self.reason.strip()
        if not 1 <= len(operator) <= 64:
            raise InvalidArgument("operator", "required: who is acting, 1 to 64 characters")
        if not 1 <= len(reason) <= 500:
            raise InvalidArgument("reason", "required: why, 1 to 500 characters")
        return self.order_no, action, operator, reason


@dataclass(frozen=True)
class DecideApproval:
    """Four eyes: ``decider`` (the token's subject) approves or rejects a pending approval."""

    approval_id: str
    approve: bool
    decider: str
    reason: str

    def validated(self) -> tuple[str, bool, str, str]:
        """The checked values: PERMISSION_DENIED without a decider (nobody to hold to account),
        else ``InvalidArgument`` naming the first bad field."""
        decider, reason = self.decider.strip(), self.reason.strip()
        if not decider:
            raise PermissionDenied("OPERATOR_REQUIRED", "a decision needs an authenticated operator")
        if not self.approval_id.strip():
            raise InvalidArgument("approval_id", "required")
        if not 1 <= len(reason) <= 500:
            raise InvalidArgument("reason", "required: why, 1 to 500 characters")
        return self.approval_id.strip(), self.approve, decider, reason
