"""Commands: what a caller asks the simulator to do (built by the servicers from protos). The
gateway's commands name the merchant they act for (``merchant``, checked by the use case)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wechat_mock.domain.merchants import MerchantRef


@dataclass(frozen=True)
class CreatePrepay:
    out_trade_no: str
    description: str
    amount_total_fen: int
    payer_openid: str = ""
    time_expire: str = ""
    attach: str = ""
    merchant: MerchantRef = field(default_factory=MerchantRef)
    #: Where to post the notifications (HTTP facade); '' = --notify-target.
    notify_url: str = ""


@dataclass(frozen=True)
class Pay:
    out_trade_no: str
    payer_openid: str = ""


@dataclass(frozen=True)
class CloseOrder:
    out_trade_no: str
    merchant: MerchantRef = field(default_factory=MerchantRef)


@dataclass(frozen=True)
class CreateRefund:
    out_trade_no: str
    out_refund_no: str
    refund_fen: int
    total_fen: int
    reason: str = ""
    merchant: MerchantRef = field(default_factory=MerchantRef)
    #: Where to post the refund's notification; '' = the trade's.
    notify_url: str = ""


@dataclass(frozen=True)
class SendTemplateMessage:
    openid: str
    template_id: str
    data: dict[str, str] = field(default_factory=dict)
    idempotency_key: str = ""
