"""Pure rules of the sentinel: when an order goes to review, how a visit is counted, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rc_common.settings import parse_settings
from recharge_service.domain.order import Channel, OrderStatus, RechargeOrder
from recharge_service.domain.review import review_reason
from recharge_service.service_layer.sentinel import SentinelReport, categorize
from recharge_service.settings import OnPending, RechargeSettings

S = OrderStatus
NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def order(
    status: OrderStatus = S.CREDIT_UNKNOWN, attempts: int = 0, age: timedelta = timedelta(hours=2)
) -> RechargeOrder:
    return RechargeOrder(
        "R1",
        "k",
        "8800000000000001",
        Channel.POS,
        100,
        "o",
        NOW - age,
        NOW - age,
        NOW - age + timedelta(minutes=30),
        "shop-a",
        1,
        status=status,
        attempts=attempts,
        last_error="GetRecharge UNAVAILABLE",
    )


def test_an_undecided_order_goes_to_review_at_the_attempt_limit_with_the_last_error() -> None:
    assert review_reason(order(attempts=9), NOW, max_attempts=10, max_age=DAY, undecided=True) == ""
    reason = review_reason(order(attempts=10), NOW, max_attempts=10, max_age=DAY, undecided=True)
    assert "10 undecided attempts" in reason and "GetRecharge UNAVAILABLE" in reason


def test_a_waiting_visit_is_not_held_against_the_attempt_limit_but_the_age_limit_applies() -> None:
    assert review_reason(order(S.REFUNDING, 50), NOW, max_attempts=10, max_age=DAY, undecided=False) == ""
    old = order(S.REFUNDING, 0, age=DAY + timedelta(minutes=5))
    assert "after creation" in review_reason(old, NOW, max_attempts=10, max_age=DAY, undecided=False)


@pytest.mark.parametrize("status", [S.CREDITED, S.REFUNDED, S.CLOSED, S.REJECTED, S.MANUAL_REVIEW])
def test_orders_out_of_the_sentinels_hands_never_go_to_review_again(status: OrderStatus) -> None:
    ancient = order(status, 99, age=DAY * 9)
    assert review_reason(ancient, NOW, max_attempts=1, max_age=DAY, undecided=True) == ""


@pytest.mark.parametrize(
    ("before", "after", "waiting", "category"),
    [
        (S.CREDIT_UNKNOWN, S.CREDITED, False, "credited"),
        (S.REFUNDING, S.REFUNDED, False, "refunded"),
        (S.AWAITING_PAYMENT, S.CLOSED, False, "closed"),
        (S.CREDIT_UNKNOWN, S.REFUNDING, False, "refunding"),
        (S.REFUNDING, S.REFUNDING, True, "refunding"),
        (S.PAID, S.MANUAL_REVIEW, False, "manual_review"),
        (S.CREDIT_UNKNOWN, S.CREDIT_UNKNOWN, False, "still_unknown"),
        (S.AWAITING_PAYMENT, S.AWAITING_PAYMENT, True, "skipped"),
        (S.CREDITED, S.CREDITED, True, "skipped"),  # settled by someone else since the claim
    ],
)
def test_each_visit_counts_once_in_the_report(
    before: OrderStatus, after: OrderStatus, waiting: bool, category: str
) -> None:
    assert categorize(order(before), order(after), waiting) == category
    report = SentinelReport()
    report.count(category)
    assert report.as_dict()[category] == 1 and sum(report.as_dict().values()) == 1


def test_sentinel_settings_have_the_documented_defaults_and_come_from_flags_or_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed = parse_settings(RechargeSettings, [], prog="t", description="")
    defaults = parsed.sentinel
    assert (defaults.interval, defaults.hold, defaults.on_pending, parsed.merchant_cache_ttl) == (
        600.0,
        3600.0,
        OnPending.CREDIT,
        2.0,
    )
    assert (defaults.max_attempts, defaults.max_age, defaults.batch, defaults.lease) == (
        10,
        86400.0,
        500,
        60.0,
    )
    assert defaults.concurrency == 64 and parsed.node_id == ""
    monkeypatch.setenv("RECHARGE_HOLD", "2.5")
    given = parse_settings(
        RechargeSettings,
        ["--sentinel-interval", "0.5", "--on-pending", "refund", "--node-id", "n1"],
        prog="t",
        description="",
    )
    assert (given.sentinel.hold, given.sentinel.interval, given.sentinel.on_pending, given.node_id) == (
        2.5,
        0.5,
        OnPending.REFUND,
        "n1",
    )


@pytest.mark.parametrize(
    "argv", [["--on-pending", "maybe"], ["--max-attempts", "0"], ["--lease", "0"], ["--hold", "-1"]]
)
def test_bad_sentinel_settings_are_refused_at_start(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings(RechargeSettings, argv, prog="t", description="")
