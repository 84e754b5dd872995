"""The pure three-way matching: each difference lands in its category, a clean day has none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recharge_service.domain.reconciliation import (
    BillPayment,
    BillRefund,
    CardCredit,
    Category,
    DaySides,
    OrderView,
    counts,
    reconcile,
)

START = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)  # 2026-11-29 00:00 +08:00
END = START + timedelta(days=1)
AT = START + timedelta(hours=3)
NOW = END + timedelta(hours=10)
HOLD = timedelta(hours=1)


def order(
    no: str, status: str = "CREDITED", pay: int = 1000, bonus: int = 100, paid: bool = True
) -> OrderView:
    return OrderView(no, status, pay, bonus, AT if paid else None, AT + timedelta(minutes=1))


def credited(no: str, pay: int = 1000, bonus: int = 100) -> list[CardCredit]:
    credits = [CardCredit(no, "RECHARGE_PRINCIPAL", pay, AT)]
    if bonus:
        credits.append(CardCredit(no, "RECHARGE_BONUS", bonus, AT))
    return credits


def sides(**kwargs: object) -> DaySides:
    values: dict[str, object] = {
        "start": START,
        "end": END,
        "payments": [],
        "refunds": [],
        "orders": {},
        "credits": [],
    }
    values.update(kwargs)
    return DaySides(**values)  # type: ignore[arg-type]


def categories(day: DaySides) -> dict[str, Category]:
    return {item.order_no: item.category for item in reconcile(day, NOW, HOLD)}


def test_a_clean_day_of_top_ups_and_a_refund_has_no_items() -> None:
    day = sides(
        payments=[BillPayment("A1", 1000, AT), BillPayment("R1", 500, AT)],
        refunds=[BillRefund("R1", "R1-refund", 500, "SUCCESS", AT)],
        orders={"A1": order("A1"), "R1": order("R1", "REFUNDED", 500, 0)},
        credits=credited("A1"),
        recharge_status={"R1": "VOIDED"},
    )
    assert reconcile(day, NOW, HOLD) == []
    assert sum(counts([]).values()) == 0


def test_paid_but_neither_credited_nor_refunded_is_named() -> None:
    day = sides(payments=[BillPayment("A1", 1000, AT)], orders={"A1": order("A1")})
    [item] = reconcile(day, NOW, HOLD)
    assert (item.order_no, item.category) == ("A1", Category.PAID_NOT_SETTLED)
    assert (item.wechat_fen, item.ours_fen, item.card_fen) == (1000, 1000, 0)
    assert item.card == "no credit"


def test_a_credit_without_any_payment_is_named() -> None:
    day = sides(credits=credited("X9"))
    assert categories(day) == {"X9": Category.CREDITED_WITHOUT_PAYMENT}


def test_a_credit_of_an_unpaid_order_is_a_credit_without_payment() -> None:
    day = sides(credits=credited("C1"), orders={"C1": order("C1", "CLOSED", paid=False)})
    assert categories(day) == {"C1": Category.CREDITED_WITHOUT_PAYMENT}


def test_refunded_while_the_pre_recharge_is_still_recharging_is_a_broken_promise() -> None:
    day = sides(
        payments=[BillPayment("R1", 500, AT)],
        refunds=[BillRefund("R1", "R1-refund", 500, "SUCCESS", AT)],
        orders={"R1": order("R1", "REFUNDED", 500, 0)},
        recharge_status={"R1": "RECHARGING"},
    )
    assert categories(day) == {"R1": Category.REFUNDED_NOT_VOIDED}


def test_credited_and_refunded_is_named() -> None:
    day = sides(
        payments=[BillPayment("R1", 1000, AT)],
        refunds=[BillRefund("R1", "R1-refund", 1000, "SUCCESS", AT)],
        orders={"R1": order("R1", "REFUNDED")},
        credits=credited("R1"),
    )
    assert categories(day) == {"R1": Category.CREDITED_AND_REFUNDED}


def test_a_fen_of_difference_in_pay_bonus_credit_or_refund_is_an_amount_mismatch() -> None:
    day = sides(
        payments=[
            BillPayment("P", 1001, AT),
            BillPayment("B", 1000, AT),
            BillPayment("C", 1000, AT),
            BillPayment("R", 500, AT),
        ],
        refunds=[BillRefund("R", "R-refund", 499, "SUCCESS", AT)],
        orders={"P": order("P"), "B": order("B"), "C": order("C"), "R": order("R", "REFUNDED", 500, 0)},
        credits=[*credited("P"), *credited("B", bonus=101), *credited("C", pay=999)],
        recharge_status={"R": "VOIDED"},
    )
    items = {item.order_no: item for item in reconcile(day, NOW, HOLD)}
    assert {no: item.category for no, item in items.items()} == dict.fromkeys(
        "PBCR", Category.AMOUNT_MISMATCH
    )
    assert items["P"].detail.startswith("pay:")
    assert items["B"].detail.startswith("bonus:")
    assert items["C"].detail.startswith("credit:")
    assert items["R"].detail.startswith("refund:")


def test_bill_payments_and_refunds_without_an_order_are_named() -> None:
    day = sides(
        payments=[BillPayment("EXTRA", 700, AT)],
        refunds=[BillRefund("GHOST", "GHOST-refund", 300, "SUCCESS", AT)],
    )
    assert categories(day) == {"EXTRA": Category.BILL_WITHOUT_ORDER, "GHOST": Category.BILL_WITHOUT_ORDER}


def test_an_order_we_think_paid_that_the_bill_lacks_is_named() -> None:
    day = sides(orders={"A1": order("A1")}, credits=credited("A1"))
    [item] = reconcile(day, NOW, HOLD)
    assert item.category is Category.PAID_NOT_IN_BILL
    assert item.wechat == "not in bill"


def test_orders_in_flight_or_inside_the_hold_window_are_pending_not_differences() -> None:
    recent = OrderView("H1", "CREDITED", 1000, 0, AT, NOW - timedelta(minutes=5))
    day = sides(
        payments=[BillPayment("F1", 1000, AT), BillPayment("H1", 1000, AT)],
        orders={"F1": order("F1", "CREDIT_UNKNOWN"), "H1": recent},
    )
    items = reconcile(day, NOW, HOLD)
    assert {i.order_no: i.category for i in items} == {"F1": Category.PENDING, "H1": Category.PENDING}
    assert not any(i.category.is_difference for i in items)
    assert counts(items)["PENDING"] == 2


def test_a_credit_after_midnight_of_a_day_order_matches_and_is_not_reported_by_that_day() -> None:
    late = [
        CardCredit("A1", "RECHARGE_PRINCIPAL", 1000, END + timedelta(seconds=2)),
        CardCredit("A1", "RECHARGE_BONUS", 100, END + timedelta(seconds=2)),
    ]
    day = sides(payments=[BillPayment("A1", 1000, AT)], orders={"A1": order("A1")}, late_credits=late)
    assert reconcile(day, NOW, HOLD) == []


def test_a_credit_today_of_an_order_paid_yesterday_is_yesterdays_business() -> None:
    yesterday = OrderView("Y1", "CREDITED", 1000, 100, START - timedelta(seconds=1), START)
    day = sides(orders={"Y1": yesterday}, credits=credited("Y1"))
    assert reconcile(day, NOW, HOLD) == []


def test_a_stray_credit_of_the_next_day_is_left_to_the_next_days_run() -> None:
    late = [CardCredit("X9", "RECHARGE_PRINCIPAL", 500, END + timedelta(minutes=1))]
    assert reconcile(sides(late_credits=late), NOW, HOLD) == []
    assert categories(sides(credits=late)) == {"X9": Category.CREDITED_WITHOUT_PAYMENT}


def test_a_payment_after_our_order_was_closed_is_paid_but_not_settled() -> None:
    closed = OrderView("C2", "CLOSED", 1000, 0, None, AT)
    day = sides(payments=[BillPayment("C2", 1000, AT)], orders={"C2": closed})
    assert categories(day) == {"C2": Category.PAID_NOT_SETTLED}
