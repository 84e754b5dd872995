"""Ports: what the use cases need from other systems, as Protocols with three-valued answers.

Adapters (``adapters/card_client.py``, ``adapters/payment_client.py``) implement them over gRPC
with per-attempt deadlines and bounded retries on *unknown* only; every attempt is written to the
order's timeline. Tests use in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from rc_common.outcomes import Done, Rejected, Unknown
from recharge_service.domain.merchant import WechatAccount
from recharge_service.domain.order import RechargeOrder
from recharge_service.domain.timeline import TimelineEntry

#: Card system pre-recharge states (``card.v1.PreRechargeStatus`` names without the prefix).
RECHARGING, SUCCEEDED, VOIDED = "RECHARGING", "SUCCEEDED", "VOIDED"

#: The remote calls that change something elsewhere, as the timeline names them (the contract's
#: method paths); a flow announces one of them before it calls it (``call_log``), and the adapter
#: that makes the call takes that announcement instead of writing the first ``sent`` row itself.
CARD_METHODS = "/card.v1.CardSystem/"
PAYMENT_METHODS = "/wechatpay.v1.PaymentGateway/"
PRE_RECHARGE = CARD_METHODS + "PreRecharge"
CONFIRM_RECHARGE = CARD_METHODS + "ConfirmRecharge"
VOID_RECHARGE = CARD_METHODS + "VoidRecharge"
CREATE_PREPAY = PAYMENT_METHODS + "CreatePrepay"
CREATE_REFUND = PAYMENT_METHODS + "CreateRefund"


@dataclass(frozen=True)
class CardRecharge:
    """The card system's record of one pre-recharge."""

    order_no: str
    status: str
    bonus_fen: int = 0
    credit_amount_fen: int = 0
    rule_version: int = 0


@dataclass(frozen=True)
class PaymentTransaction:
    """WeChat's view of a payment (QueryOrder, or a decrypted TRANSACTION.SUCCESS notification)."""

    out_trade_no: str
    transaction_id: str
    trade_state: str
    amount_total_fen: int
    success_time: str = ""


@dataclass(frozen=True)
class RefundResult:
    out_refund_no: str
    refund_id: str
    status: str
    #: The amount refunded, as WeChat says (0 when it did not say).
    refund_fen: int = 0


class CardSystem(Protocol):
    async def pre_recharge(
        self, order_no: str, card_no: str, pay_amount_fen: int, merchant_id: str
    ) -> Done[CardRecharge] | Rejected | Unknown:
        """Refused (NOT_FOUND) when the card is not ``merchant_id``'s."""
        ...

    # The merchant is named on every call: the card system answers another merchant's
    # pre-recharge NOT_FOUND, and a void of an order it never saw leaves that merchant's tombstone.
    async def confirm_recharge(
        self, order_no: str, merchant_id: str
    ) -> Done[CardRecharge] | Rejected | Unknown: ...

    async def void_recharge(
        self, order_no: str, reason: str, merchant_id: str
    ) -> Done[CardRecharge] | Rejected | Unknown: ...

    async def get_recharge(
        self, order_no: str, merchant_id: str
    ) -> Done[CardRecharge] | Rejected | Unknown: ...


class PaymentGateway(Protocol):
    """WeChat Pay; every call acts for the order's merchant (``account``: the WeChat account its
    merchant configuration version names, partner or direct)."""

    async def create_prepay(
        self,
        account: WechatAccount,
        out_trade_no: str,
        description: str,
        amount_total_fen: int,
        payer_openid: str,
        time_expire: str,
    ) -> Done[str] | Rejected | Unknown: ...

    async def query_order(
        self, account: WechatAccount, out_trade_no: str
    ) -> Done[PaymentTransaction] | Rejected | Unknown: ...

    async def close_order(
        self, account: WechatAccount, out_trade_no: str
    ) -> Done[str] | Rejected | Unknown: ...

    async def create_refund(
        self,
        account: WechatAccount,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str,
    ) -> Done[RefundResult] | Rejected | Unknown: ...

    async def query_refund(
        self, account: WechatAccount, order_no: str, out_refund_no: str
    ) -> Done[RefundResult] | Rejected | Unknown: ...


class NoticeSender(Protocol):
    """Customer notices (WeChat template messages); the idempotency key collapses repeats."""

    async def send(
        self, openid: str, template_id: str, data: Mapping[str, str], idempotency_key: str
    ) -> Done[str] | Rejected | Unknown: ...


class CallbackSender(Protocol):
    """Business callbacks (``RechargeCallbacks.OnRechargeFinished``) at the target the order's
    merchant configuration names for its channel."""

    async def send(
        self, target: str, event_id: str, order: RechargeOrder
    ) -> Done[None] | Rejected | Unknown: ...


class Timeline(Protocol):
    """Writes timeline entries together in their own short transaction (never the caller's)."""

    async def record(self, *entries: TimelineEntry, required: bool = False) -> None:
        """``required``: raise when the write fails (a ``sent`` row must be on record before its
        call leaves); otherwise a failure is logged and swallowed."""
        ...
