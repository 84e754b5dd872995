"""Notifications to the merchant: what WeChat posts (the resource documents) and the delivery
record that follows WeChat's retry schedule."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from wechat_mock.domain.payments import PaymentOrder, TradeState
from wechat_mock.domain.refunds import EVENT_TYPES, USER_RECEIVED_ACCOUNT, Refund
from wechat_mock.domain.times import format_time


class DeliveryStatus(enum.StrEnum):
    PENDING = "PENDING"
    """Not acknowledged yet; the next attempt is due at ``next_attempt_at``."""
    DELIVERED = "DELIVERED"
    """The merchant answered SUCCESS; no more attempts."""
    GIVEN_UP = "GIVEN_UP"
    """Every attempt of the schedule failed; WeChat stops trying (the merchant must query)."""


DELIVERY_TRANSITIONS: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    DeliveryStatus.PENDING: frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.GIVEN_UP}),
    DeliveryStatus.DELIVERED: frozenset(),
    DeliveryStatus.GIVEN_UP: frozenset(),
}


@dataclass(frozen=True)
class NotificationDraft:
    """A notification to send: the event and its resource document, before encryption."""

    event_type: str
    summary: str
    original_type: str
    resource: dict[str, Any]
    out_trade_no: str
    out_refund_no: str = ""
    #: Whose keys sign and encrypt it: '' = the service provider's, else a direct merchant's mchid.
    signer: str = ""
    #: Where it is posted ('' = --notify-target).
    notify_url: str = ""

    @property
    def associated_data(self) -> str:
        return self.original_type


@dataclass
class Notification:
    id: str
    event_type: str
    out_trade_no: str
    out_refund_no: str
    body: bytes
    created_at: datetime
    next_attempt_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_error: str = ""
    delivered_at: datetime | None = None
    #: Whose keys signed (encrypted) it and sign every attempt: '' = the service provider's, else
    #: a direct merchant's mchid.
    signer: str = ""
    #: Where it is posted: an HTTP(S) URL, or '' = the gRPC ``--notify-target``.
    notify_url: str = ""
    version: int = field(default=0, compare=False)

    def _move(self, target: DeliveryStatus) -> None:
        if target not in DELIVERY_TRANSITIONS[self.status]:
            raise ValueError(f"notification {self.status} -> {target} is not allowed")
        self.status = target

    def record_success(self, now: datetime) -> None:
        self.attempts += 1
        if self.status is DeliveryStatus.PENDING:
            self._move(DeliveryStatus.DELIVERED)
            self.delivered_at = now
            self.last_error = ""

    def record_failure(self, now: datetime, schedule: Sequence[float], error: str) -> None:
        """Attempt number ``attempts`` failed: wait the schedule's next gap, or give up after the last."""
        self.attempts += 1
        self.last_error = error[:500]
        if self.status is not DeliveryStatus.PENDING:
            return
        gap_index = self.attempts - 1
        if gap_index < len(schedule):
            self.next_attempt_at = now + timedelta(seconds=schedule[gap_index])
        else:
            self._move(DeliveryStatus.GIVEN_UP)


def transaction_draft(order: PaymentOrder) -> NotificationDraft:
    """TRANSACTION.SUCCESS with WeChat's transaction document: direct mode names ``mchid`` and
    ``appid``; partner mode ``sp_appid``, ``sp_mchid`` and ``sub_mchid`` (the payer is then the
    ``sp_openid``, the openid under the service provider's app id)."""
    merchant = order.merchant
    if merchant.is_direct:
        head: dict[str, Any] = {"mchid": merchant.mchid, "appid": order.appid}
        payer = {"openid": order.paid_openid}
    else:
        head = {"sp_appid": order.appid, "sp_mchid": merchant.sp_mchid, "sub_mchid": merchant.sub_mchid}
        payer = {"sp_openid": order.paid_openid}
    resource = {
        **head,
        "out_trade_no": order.out_trade_no,
        "transaction_id": order.transaction_id,
        "trade_type": "JSAPI",
        "trade_state": TradeState.SUCCESS.value,
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": order.terms.attach,
        "success_time": format_time(order.success_time),
        "payer": payer,
        "amount": {
            "total": order.amount_total_fen,
            "payer_total": order.amount_total_fen,
            "currency": "CNY",
            "payer_currency": "CNY",
        },
    }
    return NotificationDraft(
        "TRANSACTION.SUCCESS",
        "支付成功",
        "transaction",
        resource,
        order.out_trade_no,
        signer=merchant.signer,
        notify_url=order.notify_url,
    )


def refund_draft(refund: Refund, order: PaymentOrder) -> NotificationDraft:
    """REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED with WeChat's refund document: direct mode
    names ``mchid``, partner mode ``sp_mchid`` and ``sub_mchid``."""
    event_type, summary = EVENT_TYPES[refund.status]
    resource: dict[str, Any] = {
        **refund.merchant.ids(),
        "out_trade_no": refund.out_trade_no,
        "transaction_id": refund.transaction_id,
        "out_refund_no": refund.out_refund_no,
        "refund_id": refund.refund_id,
        "refund_status": refund.status.value,
        "user_received_account": USER_RECEIVED_ACCOUNT,
        "amount": {
            "total": order.amount_total_fen,
            "refund": refund.refund_fen,
            "payer_total": order.amount_total_fen,
            "payer_refund": refund.refund_fen,
        },
    }
    if refund.success_time is not None:
        resource["success_time"] = format_time(refund.success_time)
    return NotificationDraft(
        event_type,
        summary,
        "refund",
        resource,
        refund.out_trade_no,
        refund.out_refund_no,
        signer=refund.merchant.signer,
        notify_url=refund.notify_url or order.notify_url,
    )
