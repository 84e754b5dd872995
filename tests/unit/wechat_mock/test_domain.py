"""The simulator's domain: trade states, refunds and the delivery schedule (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rc_common.errors import InvalidArgument, Refused
from wechat_mock.domain import ids, validation
from wechat_mock.domain.merchants import Merchant
from wechat_mock.domain.notifications import DeliveryStatus, Notification
from wechat_mock.domain.payments import (
    TRADE_TRANSITIONS,
    IllegalTransition,
    PaymentOrder,
    PrepayTerms,
    TradeState,
    guard,
)
from wechat_mock.domain.refunds import Refund, RefundStatus, RefundTerms
from wechat_mock.domain.times import day_bounds, format_time, parse_time

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
PARTNER = Merchant.partner("1900000109", "1900000201")


def order(amount: int = 100, expire: datetime | None = None) -> PaymentOrder:
    terms = PrepayTerms("d", amount, "o1", expire, "")
    return PaymentOrder("RC-000001", "wx1", terms, NOW, merchant=PARTNER, appid="wxd678efh567hg6787")


def reason(exc: pytest.ExceptionInfo[Refused]) -> str:
    return exc.value.reason


def test_transition_table_allows_only_wechats_moves() -> None:
    allowed = {(a, b) for a, targets in TRADE_TRANSITIONS.items() for b in targets}
    assert allowed == {
        (TradeState.NOTPAY, TradeState.SUCCESS),
        (TradeState.NOTPAY, TradeState.CLOSED),
        (TradeState.SUCCESS, TradeState.REFUND),
    }
    with pytest.raises(IllegalTransition):
        guard(TradeState.CLOSED, TradeState.SUCCESS)


def test_pay_close_and_their_refusals() -> None:
    paid = order()
    assert paid.pay(NOW, "", "4200x") is True
    assert paid.pay(NOW, "", "4200y") is False and paid.transaction_id == "4200x"
    with pytest.raises(Refused) as caught:
        paid.close(NOW)
    assert reason(caught) == "ORDER_PAID"
    closed = order()
    assert closed.close(NOW) is True and closed.close(NOW) is False
    with pytest.raises(Refused) as caught:
        closed.pay(NOW, "", "t")
    assert reason(caught) == "ORDER_CLOSED"
    expired = order(expire=NOW)
    with pytest.raises(Refused) as caught:
        expired.pay(NOW, "", "t")
    assert reason(caught) == "ORDER_EXPIRED"
    assert expired.trade_state is TradeState.NOTPAY


def test_replay_with_other_terms_is_out_trade_no_used() -> None:
    existing = order()
    existing.check_replay(existing.terms, PARTNER)
    with pytest.raises(Refused) as caught:
        existing.check_replay(PrepayTerms("d", 101, "o1", None, ""), PARTNER)
    assert reason(caught) == "OUT_TRADE_NO_USED"


@given(st.lists(st.integers(min_value=1, max_value=150), max_size=12))
def test_refunds_never_exceed_the_amount_paid(requests: list[int]) -> None:
    paid = order(amount=300)
    paid.pay(NOW, "", "t")
    committed = 0
    for fen in requests:
        try:
            paid.check_refundable(fen, 300, committed)
        except Refused as exc:
            assert exc.reason == "NOT_ENOUGH"
            assert committed + fen > 300
            continue
        committed += fen
        paid.record_refund(fen)
    assert paid.refunded_fen == committed <= 300
    assert paid.trade_state is (TradeState.REFUND if committed else TradeState.SUCCESS)


def test_refund_checks_total_and_payment() -> None:
    unpaid = order()
    with pytest.raises(Refused) as caught:
        unpaid.check_refundable(10, 100, 0)
    assert reason(caught) == "TRADE_NOT_PAID"
    with pytest.raises(InvalidArgument) as bad:
        unpaid.check_refundable(10, 99, 0)
    assert bad.value.field == "total_fen"


def test_refund_settles_once_with_its_planned_outcome() -> None:
    terms = RefundTerms("RC-000001", 10, 100)
    refund = Refund("R1", "50x", terms, "4200x", "", NOW, NOW, RefundStatus.ABNORMAL, merchant=PARTNER)
    assert refund.settle(NOW) is True
    assert refund.status is RefundStatus.ABNORMAL and refund.success_time is None
    assert refund.settle(NOW, RefundStatus.SUCCESS) is False
    with pytest.raises(Refused) as caught:
        refund.check_replay(RefundTerms("RC-000001", 11, 100))
    assert reason(caught) == "REFUND_NO_CONFLICT"


def test_delivery_follows_the_schedule_then_gives_up() -> None:
    note = Notification("n", "TRANSACTION.SUCCESS", "RC", "", b"{}", NOW, NOW)
    schedule = (15.0, 30.0)
    note.record_failure(NOW, schedule, "FAIL")
    assert note.next_attempt_at == NOW + timedelta(seconds=15) and note.status is DeliveryStatus.PENDING
    note.record_failure(NOW, schedule, "FAIL")
    assert note.next_attempt_at == NOW + timedelta(seconds=30)
    note.record_failure(NOW, schedule, "FAIL")
    assert note.status is DeliveryStatus.GIVEN_UP and note.attempts == 3


def test_delivery_stops_at_the_first_success() -> None:
    note = Notification("n", "TRANSACTION.SUCCESS", "RC", "", b"{}", NOW, NOW)
    note.record_failure(NOW, (1.0,), "FAIL")
    note.record_success(NOW)
    assert note.status is DeliveryStatus.DELIVERED and note.attempts == 2


def test_times_are_rfc3339_in_shanghai() -> None:
    assert format_time(NOW) == "2026-11-26T12:00:00+08:00"
    assert parse_time("2026-11-26T12:00:00+08:00") == NOW
    assert parse_time("2026-11-26T04:00:00Z") == NOW
    assert parse_time("2026-11-26T04:00:00.123456789Z") > NOW
    for bad in ("2026-11-26", "2026-11-26T12:00:00", "2026-11-26 12:00:00+08:00"):
        with pytest.raises(ValueError):
            parse_time(bad)
    start, end = day_bounds(NOW.date())
    assert format_time(start) == "2026-11-26T00:00:00+08:00" and end - start == timedelta(days=1)


def test_ids_have_wechats_shape() -> None:
    transaction = ids.transaction_id(NOW)
    assert len(transaction) == 28 and transaction.startswith("420020261126") and transaction.isdigit()
    refund = ids.refund_id(NOW)
    assert refund.startswith("50") and refund.isdigit()
    assert ids.prepay_id(NOW).startswith("wx20261126120000")


@pytest.mark.parametrize("value", ["abcde", "a" * 33, "has space", "中文订单号123"])
def test_out_trade_no_rules(value: str) -> None:
    with pytest.raises(InvalidArgument):
        validation.out_trade_no(value)
