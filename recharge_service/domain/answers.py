"""What the other systems answer, as values the domain decides on. Pure Python.

The names mirror the contracts (``card.v1.PreRechargeStatus``, WeChat's ``trade_state`` and refund
``status``). ``StrEnum``: an answer compares equal to the contract's text, so adapters may hand
over either.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CardState(enum.StrEnum):
    """The card system's pre-recharge: RECHARGING until confirmed (SUCCEEDED) or fenced (VOIDED)."""

    RECHARGING = "RECHARGING"
    SUCCEEDED = "SUCCEEDED"
    VOIDED = "VOIDED"


class TradeState(enum.StrEnum):
    """WeChat's view of a payment order (``trade_state``)."""

    SUCCESS = "SUCCESS"
    REFUND = "REFUND"
    NOTPAY = "NOTPAY"
    CLOSED = "CLOSED"
    REVOKED = "REVOKED"
    USERPAYING = "USERPAYING"
    PAYERROR = "PAYERROR"


#: Trade states that mean the customer paid.
PAID_TRADE_STATES = frozenset({TradeState.SUCCESS, TradeState.REFUND})


class RefundState(enum.StrEnum):
    """WeChat's view of a refund: PROCESSING until it ends SUCCESS, ABNORMAL or CLOSED."""

    SUCCESS = "SUCCESS"
    PROCESSING = "PROCESSING"
    ABNORMAL = "ABNORMAL"
    CLOSED = "CLOSED"


#: Refund ends an operator must look at (the money did not come back by itself).
FAILED_REFUND_STATES = frozenset({RefundState.ABNORMAL, RefundState.CLOSED})

#: The ``code`` of a refusal that says "no such record" (gRPC NOT_FOUND).
NOT_FOUND = "NOT_FOUND"


class NotVoided(Exception):
    """A void's answer that does not prove the credit can never land."""


@dataclass(frozen=True)
class VoidProof:
    """Proof that the card system answered VOIDED for this order: the only ticket into REFUNDING
    (I1). Made only by ``from_answer``, from the void's own answer."""

    order_no: str
    _token: object

    @classmethod
    def from_answer(cls, order_no: str, answered: str) -> VoidProof:
        if answered != CardState.VOIDED:
            raise NotVoided(f"order {order_no}: the void answered {answered}, not VOIDED")
        return cls(order_no, _MINT)


_MINT = object()


def is_genuine(proof: object, order_no: str) -> bool:
    """True for a proof ``from_answer`` made for ``order_no``."""
    return isinstance(proof, VoidProof) and proof._token is _MINT and proof.order_no == order_no
