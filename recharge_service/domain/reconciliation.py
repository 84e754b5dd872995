"""The three-way reconciliation of one business day: WeChat's trade bill, our orders, the card
journal. Pure: the service layer gathers the three sides, :func:`reconcile` matches them.

The day is WeChat's: an order belongs to the day its payment succeeded (the bill's SUCCESS row,
or our ``paid_at`` when the bill lacks it). The card side is the journal of that day and the next
(a credit may land after midnight) plus, for orders refunded on the day, the pre-recharge's state.

Each order gets at most one item; an order that is fine gets none. Categories (what each means
in business words):

- ``PAID_NOT_SETTLED``: paid at WeChat, neither credited on the card nor refunded.
- ``CREDITED_WITHOUT_PAYMENT``: a card credit for an order nobody paid.
- ``REFUNDED_NOT_VOIDED``: refunded at WeChat, but the pre-recharge is not VOIDED (a broken I1).
- ``CREDITED_AND_REFUNDED``: the card was credited and WeChat refunded (money left twice).
- ``AMOUNT_MISMATCH``: pay, bonus, credit or refund differ by any fen between the sides.
- ``BILL_WITHOUT_ORDER``: a payment or refund in the bill with no order of ours.
- ``PAID_NOT_IN_BILL``: an order we think paid that the bill lacks.
- ``PENDING``: still in flight or inside the hold window: not a difference, rechecked next run.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta


class Category(enum.Enum):
    PAID_NOT_SETTLED = "PAID_NOT_SETTLED"
    CREDITED_WITHOUT_PAYMENT = "CREDITED_WITHOUT_PAYMENT"
    REFUNDED_NOT_VOIDED = "REFUNDED_NOT_VOIDED"
    CREDITED_AND_REFUNDED = "CREDITED_AND_REFUNDED"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    BILL_WITHOUT_ORDER = "BILL_WITHOUT_ORDER"
    PAID_NOT_IN_BILL = "PAID_NOT_IN_BILL"
    PENDING = "PENDING"

    @property
    def is_difference(self) -> bool:
        return self is not Category.PENDING


#: Our order statuses (names of ``OrderStatus``) that say "the customer paid".
PAID_STATUSES = frozenset({"PAID", "CREDIT_UNKNOWN", "CREDITED", "REFUNDING", "REFUNDED", "MANUAL_REVIEW"})
#: Statuses still moving: the order is not finished, so it cannot be judged yet.
IN_FLIGHT_STATUSES = frozenset(
    {"CREATED", "AWAITING_PAYMENT", "PAID", "CREDIT_UNKNOWN", "REFUNDING", "MANUAL_REVIEW"}
)


@dataclass(frozen=True)
class BillPayment:
    out_trade_no: str
    amount_fen: int
    at: datetime


@dataclass(frozen=True)
class BillRefund:
    out_trade_no: str
    out_refund_no: str
    refund_fen: int
    #: SUCCESS / PROCESSING / CLOSED / ABNORMAL.
    status: str
    at: datetime


@dataclass(frozen=True)
class OrderView:
    """Our side of one order."""

    order_no: str
    #: ``OrderStatus`` name.
    status: str
    pay_amount_fen: int
    bonus_fen: int
    paid_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class CardCredit:
    """One journal entry of a recharge: ``kind`` is RECHARGE_PRINCIPAL or RECHARGE_BONUS."""

    order_no: str
    kind: str
    amount_fen: int
    at: datetime


@dataclass(frozen=True)
class DaySides:
    """Everything one run looks at, for one merchant and one day ``[start, end)``."""

    start: datetime
    end: datetime
    payments: Sequence[BillPayment]
    refunds: Sequence[BillRefund]
    #: Our orders paid on the day, plus every order the bill or the journal names.
    orders: Mapping[str, OrderView]
    #: Journal credits of the day.
    credits: Sequence[CardCredit]
    #: Card pre-recharge status (RECHARGING / SUCCEEDED / VOIDED / "" unknown) of refunded orders.
    recharge_status: Mapping[str, str] = field(default_factory=dict)
    #: Journal credits of the next day (a credit may land after midnight); matched to the day's
    #: orders only, never reported as credits without payment (the next run judges those).
    late_credits: Sequence[CardCredit] = ()


@dataclass(frozen=True)
class Item:
    """One finding: the order, its category, and the three sides' views (amounts in fen)."""

    order_no: str
    category: Category
    detail: str
    wechat: str
    ours: str
    card: str
    wechat_fen: int = 0
    ours_fen: int = 0
    card_fen: int = 0


@dataclass
class _CardSide:
    principal_fen: int = 0
    bonus_fen: int = 0
    entries: int = 0

    @property
    def credited(self) -> bool:
        return self.entries > 0

    def describe(self, status: str = "") -> str:
        if not self.credited:
            return f"no credit{f' (pre-recharge {status})' if status else ''}"
        return f"credited {self.principal_fen}+{self.bonus_fen} bonus"


def _describe_order(order: OrderView | None) -> str:
    if order is None:
        return "no order"
    return f"{order.status} pay {order.pay_amount_fen} bonus {order.bonus_fen}"


def _card_sides(credits: Iterable[CardCredit]) -> dict[str, _CardSide]:
    sides: dict[str, _CardSide] = {}
    for credit in credits:
        side = sides.setdefault(credit.order_no, _CardSide())
        side.entries += 1
        if credit.kind == "RECHARGE_BONUS":
            side.bonus_fen += credit.amount_fen
        else:
            side.principal_fen += credit.amount_fen
    return sides


def is_pending(order: OrderView, now: datetime, hold: timedelta) -> bool:
    """In flight (not finished) or changed within the hold window."""
    return order.status in IN_FLIGHT_STATUSES or now - order.updated_at < hold


def reconcile(sides: DaySides, now: datetime, hold: timedelta) -> list[Item]:
    """The items of one day, ordered by order number (differences and pending orders)."""
    cards = _card_sides([*sides.credits, *sides.late_credits])
    day_credited = {c.order_no for c in sides.credits}
    paid = {p.out_trade_no: p for p in sides.payments}
    refunds: dict[str, list[BillRefund]] = {}
    for refund in sides.refunds:
        refunds.setdefault(refund.out_trade_no, []).append(refund)
    items: dict[str, Item] = {}

    def within_day(at: datetime | None) -> bool:
        return at is not None and sides.start <= at < sides.end

    day_orders = {no for no, o in sides.orders.items() if o.status in PAID_STATUSES and within_day(o.paid_at)}
    for order_no in sorted(set(paid) | day_orders):
        item = _judge_payment(
            order_no, paid.get(order_no), sides, cards.get(order_no, _CardSide()), now, hold
        )
        if item is not None:
            items[order_no] = item
    for order_no, rows in sorted(refunds.items()):
        if order_no in items:
            continue
        item = _judge_refund(order_no, rows, sides, cards.get(order_no, _CardSide()), now, hold)
        if item is not None:
            items[order_no] = item
    for order_no in sorted(day_credited):
        card = cards[order_no]
        if order_no in items or order_no in paid or order_no in day_orders or order_no in refunds:
            continue
        item = _judge_stray_credit(order_no, sides, card)
        if item is not None:
            items[order_no] = item
    return [items[no] for no in sorted(items)]


def _judge_payment(
    order_no: str,
    payment: BillPayment | None,
    sides: DaySides,
    card: _CardSide,
    now: datetime,
    hold: timedelta,
) -> Item | None:
    order = sides.orders.get(order_no)
    wechat = f"paid {payment.amount_fen}" if payment else "not in bill"
    wechat_fen = payment.amount_fen if payment else 0
    ours_fen = order.pay_amount_fen if order else 0

    def item(category: Category, detail: str) -> Item:
        return Item(order_no, category, detail, wechat, _describe_order(order), card.describe(),
                    wechat_fen, ours_fen, card.principal_fen + card.bonus_fen)  # fmt: skip

    if order is None:
        return item(Category.BILL_WITHOUT_ORDER, "a payment in the bill with no order of ours")
    if is_pending(order, now, hold):
        return item(Category.PENDING, "in flight or inside the hold window; rechecked next run")
    if payment is None:
        return item(Category.PAID_NOT_IN_BILL, "we think it paid; the bill lacks the payment")
    if payment.amount_fen != order.pay_amount_fen:
        return item(Category.AMOUNT_MISMATCH, f"pay: bill {payment.amount_fen}, ours {order.pay_amount_fen}")
    refunded = order.status == "REFUNDED" or any(r.status == "SUCCESS" for r in _refunds_of(sides, order_no))
    if card.credited and refunded:
        return item(Category.CREDITED_AND_REFUNDED, "credited on the card and refunded at WeChat")
    if card.credited:
        if card.principal_fen != order.pay_amount_fen:
            return item(Category.AMOUNT_MISMATCH,
                        f"credit: card {card.principal_fen}, pay {order.pay_amount_fen}")  # fmt: skip
        if card.bonus_fen != order.bonus_fen:
            return item(Category.AMOUNT_MISMATCH, f"bonus: card {card.bonus_fen}, ours {order.bonus_fen}")
        return None
    if refunded:
        return _judge_refund(order_no, list(_refunds_of(sides, order_no)), sides, card, now, hold)
    return item(Category.PAID_NOT_SETTLED, "paid at WeChat; neither credited on the card nor refunded")


def _refunds_of(sides: DaySides, order_no: str) -> Iterable[BillRefund]:
    return (r for r in sides.refunds if r.out_trade_no == order_no)


def _judge_refund(
    order_no: str,
    rows: Sequence[BillRefund],
    sides: DaySides,
    card: _CardSide,
    now: datetime,
    hold: timedelta,
) -> Item | None:
    order = sides.orders.get(order_no)
    done = [r for r in rows if r.status == "SUCCESS"]
    refund_fen = sum(r.refund_fen for r in done)
    status = sides.recharge_status.get(order_no, "")
    wechat = (
        f"refunded {refund_fen}" if done else (f"refund {rows[0].status}" if rows else "no refund in bill")
    )

    def item(category: Category, detail: str) -> Item:
        return Item(order_no, category, detail, wechat, _describe_order(order), card.describe(status),
                    refund_fen, order.pay_amount_fen if order else 0,
                    card.principal_fen + card.bonus_fen)  # fmt: skip

    if order is None:
        return item(Category.BILL_WITHOUT_ORDER, "a refund in the bill with no order of ours")
    if is_pending(order, now, hold):
        return item(Category.PENDING, "in flight or inside the hold window; rechecked next run")
    if not done:  # refunded on another day, or not final at WeChat: only the card can still differ
        if card.credited and order.status == "REFUNDED":
            return item(Category.CREDITED_AND_REFUNDED, "credited on the card; we refunded it")
        return None
    if card.credited or status == "SUCCEEDED":
        return item(Category.CREDITED_AND_REFUNDED, "credited on the card and refunded at WeChat")
    if status and status != "VOIDED":
        return item(Category.REFUNDED_NOT_VOIDED, f"refunded while the pre-recharge is {status}")
    if refund_fen != order.pay_amount_fen:
        return item(Category.AMOUNT_MISMATCH, f"refund: bill {refund_fen}, pay {order.pay_amount_fen}")
    return None


def _judge_stray_credit(order_no: str, sides: DaySides, card: _CardSide) -> Item | None:
    order = sides.orders.get(order_no)
    if order is not None and order.paid_at is not None and order.paid_at < sides.start:
        return None  # an earlier day's order credited after midnight: that day's run saw it
    if order is not None and order.paid_at is not None and order.paid_at >= sides.end:
        return None  # the next day's order: judged by the next run
    return Item(order_no, Category.CREDITED_WITHOUT_PAYMENT, "a card credit with no payment",
                "no payment in bill", _describe_order(order), card.describe(),
                0, 0, card.principal_fen + card.bonus_fen)  # fmt: skip


def counts(items: Iterable[Item]) -> dict[str, int]:
    """Items per category name (every category present, zeros included)."""
    result = {c.value: 0 for c in Category}
    for item in items:
        result[item.category.value] += 1
    return result
