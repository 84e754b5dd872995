"""Payment orders (JSAPI prepay orders) and their trade states, as WeChat Pay APIv3 has them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from rc_common.errors import InvalidArgument, Refused
from rc_common.transitions import IllegalTransition
from wechat_mock.domain.merchants import Merchant


class TradeState(enum.StrEnum):
    """``trade_state`` of an order."""

    NOTPAY = "NOTPAY"
    """Created (prepay id issued), not paid. Also after ``time_expire``: WeChat keeps an expired
    order NOTPAY until the merchant closes it, but refuses to take the payment."""
    SUCCESS = "SUCCESS"
    """Paid: a transaction id and success time exist; the money is the merchant's."""
    CLOSED = "CLOSED"
    """Closed by the merchant before payment; can never be paid (stops a late payment)."""
    REFUND = "REFUND"
    """Paid, and a refund of it has succeeded (转入退款)."""


#: The one transition table of trade states.
TRADE_TRANSITIONS: dict[TradeState, frozenset[TradeState]] = {
    TradeState.NOTPAY: frozenset({TradeState.SUCCESS, TradeState.CLOSED}),
    TradeState.SUCCESS: frozenset({TradeState.REFUND}),
    TradeState.CLOSED: frozenset(),
    TradeState.REFUND: frozenset(),
}

TRADE_STATE_DESC = {
    TradeState.NOTPAY: "未支付",
    TradeState.SUCCESS: "支付成功",
    TradeState.CLOSED: "已关闭",
    TradeState.REFUND: "转入退款",
}

PAID_STATES = frozenset({TradeState.SUCCESS, TradeState.REFUND})


def guard(current: TradeState, target: TradeState) -> None:
    if target not in TRADE_TRANSITIONS[current]:
        raise IllegalTransition("trade state", str(current), str(target))


@dataclass(frozen=True)
class PrepayTerms:
    """What the merchant asked for; the same out_trade_no must always come with the same terms."""

    description: str
    amount_total_fen: int
    payer_openid: str
    time_expire: datetime | None
    attach: str


@dataclass
class PaymentOrder:
    out_trade_no: str
    prepay_id: str
    terms: PrepayTerms
    created_at: datetime
    trade_state: TradeState = TradeState.NOTPAY
    transaction_id: str = ""
    success_time: datetime | None = None
    paid_openid: str = ""
    closed_at: datetime | None = None
    refunded_fen: int = 0
    version: int = 0
    #: Whose trade it is (set at creation, never changes; only its requests find it).
    merchant: Merchant = field(kw_only=True)
    #: The app id of the trade: the direct merchant's, or the service provider's (sp_appid).
    appid: str = field(kw_only=True)
    #: Where WeChat posts this trade's notifications (the prepay request's ``notify_url``);
    #: '' = the simulator's ``--notify-target`` (the gRPC world).
    notify_url: str = field(default="", kw_only=True)

    @property
    def amount_total_fen(self) -> int:
        return self.terms.amount_total_fen

    @property
    def is_paid(self) -> bool:
        return self.trade_state in PAID_STATES

    @property
    def trade_state_desc(self) -> str:
        return TRADE_STATE_DESC[self.trade_state]

    def _move(self, target: TradeState) -> None:
        guard(self.trade_state, target)
        self.trade_state = target

    def belongs_to(self, merchant: Merchant) -> bool:
        return self.merchant == merchant

    def check_replay(self, terms: PrepayTerms, merchant: Merchant) -> None:
        """A second CreatePrepay with this out_trade_no: refused unless it is the same request
        (out_trade_no is unique across merchants here, as the recharge center's order numbers are)."""
        if merchant != self.merchant:
            raise Refused("OUT_TRADE_NO_USED", f"{self.out_trade_no}: out_trade_no used by another merchant")
        if terms != self.terms:
            raise Refused(
                "OUT_TRADE_NO_USED", f"{self.out_trade_no}: out_trade_no used with other parameters"
            )
        if self.trade_state is TradeState.CLOSED:
            raise Refused("ORDER_CLOSED", f"{self.out_trade_no}: the order is closed")
        if self.is_paid:
            raise Refused("ORDER_PAID", f"{self.out_trade_no}: the order is already paid")

    def pay(self, now: datetime, openid: str, transaction_id: str) -> bool:
        """The customer pays. True when this call took the money; False for a replay of a paid order."""
        if self.is_paid:
            return False
        if self.trade_state is TradeState.CLOSED:
            raise Refused("ORDER_CLOSED", f"{self.out_trade_no}: the order is closed")
        expire = self.terms.time_expire
        if expire is not None and now >= expire:
            raise Refused("ORDER_EXPIRED", f"{self.out_trade_no}: the order expired at {expire.isoformat()}")
        payer = openid or self.terms.payer_openid
        if not payer:
            raise InvalidArgument("payer_openid", "required: the order was created without a payer")
        self._move(TradeState.SUCCESS)
        self.transaction_id = transaction_id
        self.success_time = now
        self.paid_openid = payer
        return True

    def close(self, now: datetime) -> bool:
        """Close an unpaid order (idempotent). True when this call closed it."""
        if self.trade_state is TradeState.CLOSED:
            return False
        if self.is_paid:
            raise Refused("ORDER_PAID", f"{self.out_trade_no}: the order is paid and cannot be closed")
        self._move(TradeState.CLOSED)
        self.closed_at = now
        return True

    def check_refundable(self, refund_fen: int, total_fen: int, committed_fen: int) -> None:
        """May ``refund_fen`` more be refunded, given ``committed_fen`` already refunded or in flight?"""
        if total_fen != self.amount_total_fen:
            raise InvalidArgument("total_fen", f"must equal the order's amount ({self.amount_total_fen} fen)")
        if not self.is_paid:
            raise Refused(
                "TRADE_NOT_PAID", f"{self.out_trade_no}: the order is not paid ({self.trade_state})"
            )
        remaining = self.amount_total_fen - committed_fen
        if refund_fen > remaining:
            raise Refused(
                "NOT_ENOUGH",
                f"{self.out_trade_no}: refund of {refund_fen} fen exceeds the {remaining} fen that remain",
            )

    def record_refund(self, refund_fen: int) -> None:
        """A refund of this order succeeded."""
        if self.refunded_fen + refund_fen > self.amount_total_fen:
            why = ": refunds would exceed the amount paid"
            raise IllegalTransition("refund", "requested", "accepted", why)
        self.refunded_fen += refund_fen
        if self.trade_state is TradeState.SUCCESS:
            self._move(TradeState.REFUND)
