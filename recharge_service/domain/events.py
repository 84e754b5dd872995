"""Domain events: what happened to an order, in the past tense. Pure Python.

The unit of work turns the events raised by a state change into outbox rows in the same
transaction (customer notices, business callbacks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recharge_service.domain.order import OrderStatus


@dataclass(frozen=True)
class Event:
    order_no: str
    detail: str = ""


class OrderAwaitingPayment(Event):
    pass


class OrderPaid(Event):
    pass


class OrderCreditUnknown(Event):
    pass


class OrderCredited(Event):
    pass


class OrderRefunding(Event):
    pass


class OrderRefunded(Event):
    pass


class OrderClosed(Event):
    pass


class OrderRejected(Event):
    pass


class OrderSentToManualReview(Event):
    pass


_BY_STATUS: dict[str, type[Event]] = {
    "AWAITING_PAYMENT": OrderAwaitingPayment,
    "PAID": OrderPaid,
    "CREDIT_UNKNOWN": OrderCreditUnknown,
    "CREDITED": OrderCredited,
    "REFUNDING": OrderRefunding,
    "REFUNDED": OrderRefunded,
    "CLOSED": OrderClosed,
    "REJECTED": OrderRejected,
    "MANUAL_REVIEW": OrderSentToManualReview,
}


def for_status(order_no: str, status: OrderStatus, detail: str = "") -> Event:
    """The event raised when an order enters ``status``."""
    return _BY_STATUS[status.name](order_no, detail)
