"""Commands: what a caller asks the simulator to do (built by the servicers from protos)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CreatePrepay:
    out_trade_no: str
    description: str
    amount_total_fen: int
    payer_openid: str = ""
    time_expire: str = ""
    attach: str = ""


@dataclass(frozen=True)
class Pay:
    out_trade_no: str
    payer_openid: str = ""


@dataclass(frozen=True)
class CloseOrder:
    out_trade_no: str


@dataclass(frozen=True)
class CreateRefund:
    out_trade_no: str
    out_refund_no: str
    refund_fen: int
    total_fen: int
    reason: str = ""


@dataclass(frozen=True)
class SendTemplateMessage:
    openid: str
    template_id: str
    data: dict[str, str] = field(default_factory=dict)
    idempotency_key: str = ""
