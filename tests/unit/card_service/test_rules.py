"""Recharge rules: the bonus tiers, their validation, and the top-up limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from card_service.domain.rules import BonusTier, Limits, RechargeRule, validate_rule
from rc_common.errors import InvalidArgument, Refused

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PROMOTION = (BonusTier(100_000, 20_000), BonusTier(20_000, 2_000), BonusTier(50_000, 8_000))


@pytest.mark.parametrize(
    ("pay", "bonus"),
    [(19_999, 0), (20_000, 2_000), (49_999, 2_000), (50_000, 8_000), (100_000, 20_000), (9_000_000, 20_000)],
)
def test_the_bonus_is_that_of_the_highest_tier_reached(pay: int, bonus: int) -> None:
    rule = RechargeRule("m-1", 0).next_version(PROMOTION, Limits(), NOW)
    assert rule.bonus_for(pay) == bonus


def test_a_new_rule_gets_the_next_version_and_sorted_tiers() -> None:
    first = RechargeRule("m-1", 0).next_version(PROMOTION, Limits(), NOW)
    second = first.next_version((), Limits(min_pay_fen=500), NOW)
    assert (first.version, second.version) == (1, 2)
    assert first.merchant_id == second.merchant_id == "m-1"
    assert [t.min_pay_fen for t in first.tiers] == [20_000, 50_000, 100_000]
    assert second.bonus_for(100_000) == 0


@pytest.mark.parametrize(
    ("tiers", "limits", "field"),
    [
        ((BonusTier(0, 10),), Limits(), "tiers[0].min_pay_fen"),
        ((BonusTier(100, 10), BonusTier(200, -1)), Limits(), "tiers[1].bonus_fen"),
        ((BonusTier(100, 10), BonusTier(100, 20)), Limits(), "tiers[1].min_pay_fen"),
        ((), Limits(max_pay_fen=-1), "max_pay_fen"),
        ((), Limits(min_pay_fen=500, max_pay_fen=400), "min_pay_fen"),
    ],
)
def test_an_invalid_rule_names_the_field_at_fault(
    tiers: tuple[BonusTier, ...], limits: Limits, field: str
) -> None:
    with pytest.raises(InvalidArgument) as invalid:
        validate_rule(tiers, limits)
    assert invalid.value.field == field


def test_zero_limits_mean_the_server_defaults() -> None:
    assert Limits(0, 700, 0).filled(Limits(100, 500, 9_000)) == Limits(100, 700, 9_000)


@pytest.mark.parametrize(
    ("pay", "balance", "pending", "reason"),
    [
        (99, 0, 0, "AMOUNT_BELOW_MINIMUM"),
        (10_001, 0, 0, "AMOUNT_ABOVE_MAXIMUM"),
        (1_000, 15_000, 4_001, "BALANCE_CAP_EXCEEDED"),
    ],
)
def test_a_top_up_outside_the_limits_is_refused(pay: int, balance: int, pending: int, reason: str) -> None:
    limits = Limits(100, 10_000, 20_000)
    with pytest.raises(Refused) as refused:
        limits.check_top_up(pay, pay, balance, pending)
    assert refused.value.reason == reason


def test_a_top_up_exactly_at_the_cap_passes() -> None:
    Limits(100, 10_000, 20_000).check_top_up(1_000, 1_000, 15_000, 4_000)
