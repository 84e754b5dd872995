"""Commands (imperative, validated on construction): what callers ask the card system to do."""

from __future__ import annotations

import re
from dataclasses import dataclass

from card_service.domain.rules import BonusTier, Limits
from rc_common.errors import InvalidArgument

CARD_NO = re.compile(r"[0-9]{8,32}")
MAX_KEY_LENGTH = 128


def required(field: str, value: str) -> None:
    if not value:
        raise InvalidArgument(field, "required")
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidArgument(field, f"at most {MAX_KEY_LENGTH} characters")


def _positive(field: str, value: int) -> None:
    if value <= 0:
        raise InvalidArgument(field, "must be positive")


@dataclass(frozen=True)
class StartPreRecharge:
    order_no: str
    card_no: str
    pay_amount_fen: int

    def __post_init__(self) -> None:
        required("order_no", self.order_no)
        required("card_no", self.card_no)
        _positive("pay_amount_fen", self.pay_amount_fen)


@dataclass(frozen=True)
class ConfirmRecharge:
    order_no: str

    def __post_init__(self) -> None:
        required("order_no", self.order_no)


@dataclass(frozen=True)
class VoidRecharge:
    order_no: str
    reason: str = ""

    def __post_init__(self) -> None:
        required("order_no", self.order_no)


@dataclass(frozen=True)
class Consume:
    request_id: str
    card_no: str
    amount_fen: int
    merchant_id: str = ""

    def __post_init__(self) -> None:
        required("request_id", self.request_id)
        required("card_no", self.card_no)
        _positive("amount_fen", self.amount_fen)


@dataclass(frozen=True)
class ReverseConsume:
    request_id: str

    def __post_init__(self) -> None:
        required("request_id", self.request_id)


@dataclass(frozen=True)
class OpenCard:
    card_no: str
    holder_name: str = ""

    def __post_init__(self) -> None:
        if not CARD_NO.fullmatch(self.card_no):
            raise InvalidArgument("card_no", "must be 8 to 32 digits")


@dataclass(frozen=True)
class SetRechargeRule:
    tiers: tuple[BonusTier, ...]
    limits: Limits
