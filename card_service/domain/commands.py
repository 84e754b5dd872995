"""Commands (imperative, validated on construction): what callers ask the card system to do."""

from __future__ import annotations

import re
from dataclasses import dataclass

from card_service.domain.rules import BonusTier, Limits
from rc_common.errors import InvalidArgument

CARD_NO = re.compile(r"[0-9]{8,32}")
#: A merchant (one card program of the SaaS): 1 to 32 letters, digits, ``_`` or ``-``.
MERCHANT_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_KEY_LENGTH = 128


def required(field: str, value: str) -> None:
    if not value:
        raise InvalidArgument(field, "required")
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidArgument(field, f"at most {MAX_KEY_LENGTH} characters")


def required_merchant(merchant_id: str) -> None:
    """For the requests that act in one merchant's program (open a card, pre-recharge, rules)."""
    if not merchant_id:
        raise InvalidArgument("merchant_id", "required")
    optional_merchant(merchant_id)


def optional_merchant(merchant_id: str) -> None:
    """For the requests where naming the merchant only narrows what is seen ('' sees all)."""
    if merchant_id and not MERCHANT_ID.fullmatch(merchant_id):
        raise InvalidArgument("merchant_id", "must be 1 to 32 characters of A-Z, a-z, 0-9, '_' and '-'")


def _positive(field: str, value: int) -> None:
    if value <= 0:
        raise InvalidArgument(field, "must be positive")


@dataclass(frozen=True)
class StartPreRecharge:
    order_no: str
    card_no: str
    pay_amount_fen: int
    #: The card must be this merchant's; the bonus and limits follow this merchant's rule.
    merchant_id: str

    def __post_init__(self) -> None:
        required("order_no", self.order_no)
        required("card_no", self.card_no)
        _positive("pay_amount_fen", self.pay_amount_fen)
        required_merchant(self.merchant_id)


@dataclass(frozen=True)
class ConfirmRecharge:
    order_no: str
    #: When set, another merchant's pre-recharge is not found.
    merchant_id: str = ""

    def __post_init__(self) -> None:
        required("order_no", self.order_no)
        optional_merchant(self.merchant_id)


@dataclass(frozen=True)
class VoidRecharge:
    order_no: str
    reason: str = ""
    #: When set, another merchant's pre-recharge is not found; a tombstone records it.
    merchant_id: str = ""

    def __post_init__(self) -> None:
        required("order_no", self.order_no)
        optional_merchant(self.merchant_id)


@dataclass(frozen=True)
class Consume:
    request_id: str
    card_no: str
    amount_fen: int
    #: When set, another merchant's card is not found.
    merchant_id: str = ""

    def __post_init__(self) -> None:
        required("request_id", self.request_id)
        required("card_no", self.card_no)
        _positive("amount_fen", self.amount_fen)
        optional_merchant(self.merchant_id)


@dataclass(frozen=True)
class ReverseConsume:
    request_id: str

    def __post_init__(self) -> None:
        required("request_id", self.request_id)


@dataclass(frozen=True)
class OpenCard:
    #: Globally unique, whatever the merchant.
    card_no: str
    #: The merchant whose card program issues the card; it never changes.
    merchant_id: str
    holder_name: str = ""

    def __post_init__(self) -> None:
        if not CARD_NO.fullmatch(self.card_no):
            raise InvalidArgument("card_no", "must be 8 to 32 digits")
        required_merchant(self.merchant_id)


@dataclass(frozen=True)
class SetRechargeRule:
    #: Whose rule: each merchant's versions count 1, 2, ...
    merchant_id: str
    tiers: tuple[BonusTier, ...]
    limits: Limits

    def __post_init__(self) -> None:
        required_merchant(self.merchant_id)
