"""Order and refund numbers; which follow-ups an order's end causes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from rc_common.clock import rfc3339_china
from recharge_service.domain import events
from recharge_service.domain.followups import followups_for, yuan
from recharge_service.domain.numbers import new_order_no, refund_no
from recharge_service.domain.order import Channel, OrderStatus, RechargeOrder

MOMENT = datetime(2026, 11, 26, 16, 30, 5, tzinfo=UTC)  # 00:30:05 next day in Shanghai


def test_order_numbers_carry_the_china_time_and_ten_random_digits() -> None:
    number = new_order_no(MOMENT, "0123456789")
    assert number == "R202611270030050123456789"
    generated = {new_order_no(MOMENT) for _ in range(50)}
    assert len(generated) == 50
    for value in generated:
        assert re.fullmatch(r"R\d{24}", value)
        assert 6 <= len(value) <= 32


def test_the_refund_number_is_derived_from_the_order_number() -> None:
    assert refund_no("R202611270030050123456789") == "R202611270030050123456789-R1"
    assert re.fullmatch(r"[0-9A-Za-z_\-|*@]{1,64}", refund_no("R202611270030050123456789"))


def test_time_expire_is_rfc3339_in_china_time() -> None:
    assert rfc3339_china(MOMENT) == "2026-11-27T00:30:05+08:00"


def test_yuan_formats_fen() -> None:
    assert (yuan(102_000), yuan(5), yuan(0)) == ("¥1020.00", "¥0.05", "¥0.00")


def order(status: OrderStatus) -> RechargeOrder:
    return RechargeOrder(
        order_no="R1",
        idempotency_key="k",
        card_no="8800000000000001",
        channel=Channel.THIRD_PARTY,
        pay_amount_fen=100_000,
        payer_openid="o-1",
        created_at=MOMENT,
        updated_at=MOMENT,
        expires_at=MOMENT,
        merchant_id="shop-a",
        merchant_version=1,
        status=status,
        bonus_fen=20_000,
        credit_amount_fen=120_000,
    )


def test_a_credit_sends_a_notice_with_pay_and_bonus_and_a_callback() -> None:
    notice, callback = followups_for(order(OrderStatus.CREDITED), events.OrderCredited("R1"))
    assert (notice.topic, notice.event_id) == ("customer_notice", "R1.credited.notice")
    assert notice.payload["openid"] == "o-1"
    assert notice.payload["data"]["pay_amount"] == "¥1000.00"
    assert notice.payload["data"]["bonus"] == "¥200.00"
    assert notice.payload["data"]["credit_amount"] == "¥1200.00"
    assert (callback.topic, callback.event_id) == ("business_callback", "R1.credited.callback")
    assert callback.payload == {
        "channel": "THIRD_PARTY",
        "status": "CREDITED",
        "merchant_id": "shop-a",
        "merchant_version": 1,
    }


def test_a_refund_sends_a_refunded_notice_and_a_callback() -> None:
    found = followups_for(order(OrderStatus.REFUNDED), events.OrderRefunded("R1"))
    assert [(f.topic, f.event_id) for f in found] == [
        ("customer_notice", "R1.refunded.notice"),
        ("business_callback", "R1.refunded.callback"),
    ]
    assert found[0].payload["data"]["result"] == "refunded"


def test_rejected_and_closed_orders_only_call_back_and_other_steps_send_nothing() -> None:
    assert [f.topic for f in followups_for(order(OrderStatus.REJECTED), events.OrderRejected("R1"))] == [
        "business_callback"
    ]
    assert [f.topic for f in followups_for(order(OrderStatus.CLOSED), events.OrderClosed("R1"))] == [
        "business_callback"
    ]
    for event in (
        events.OrderPaid("R1"),
        events.OrderCreditUnknown("R1"),
        events.OrderRefunding("R1"),
        events.OrderSentToManualReview("R1"),
        events.OrderAwaitingPayment("R1"),
    ):
        assert followups_for(order(OrderStatus.PAID), event) == []
