"""The driver's choices and the profiles are data: seeded, complete, and replayable."""

from __future__ import annotations

from collections import Counter

import pytest

from scripts.chaos.cli import parse_args
from scripts.chaos.driver import Shares, plan_orders, run_tag
from scripts.chaos.invariants import Observation, check
from scripts.chaos.profiles import PROFILES
from scripts.merchants import CHAOS_MERCHANTS


def test_the_same_seed_plans_the_same_top_ups() -> None:
    shares = Shares(doomed=0.2)
    assert plan_orders(7, 50, "123456", shares) == plan_orders(7, 50, "123456", shares)
    assert plan_orders(7, 50, "123456", shares) != plan_orders(8, 50, "123456", shares)


def test_plans_mix_spenders_walkaways_rejects_and_doomed_cards() -> None:
    plans = plan_orders(3, 400, run_tag("all", 3), Shares(doomed=0.2, abandon=0.05, reject=0.05))
    assert any(p.spend_share for p in plans)
    assert any(not p.pay and p.amount_fen >= 100 for p in plans)  # walked away
    assert any(p.amount_fen < 100 for p in plans)  # refused at pre-recharge
    doomed = [p for p in plans if p.doomed]
    assert doomed and len({p.card_no for p in doomed}) == len(doomed)  # one frozen card each
    assert not any(p.spend_share for p in doomed)
    assert len({p.key for p in plans}) == len(plans)


def test_every_profile_of_the_issue_exists_and_fault_profiles_have_rules() -> None:
    assert set(PROFILES) == {
        "none", "card-flaky", "late-success", "lost-response", "notify-chaos", "refund-chaos", "crash", "all"
    }
    for profile in PROFILES.values():
        if profile.injects:
            assert profile.card or profile.wechat, profile.name
    assert PROFILES["crash"].kills and PROFILES["all"].kills
    assert PROFILES["refund-chaos"].doomed_share > 0  # refunds need credits that are refused


def test_an_empty_observation_is_clean() -> None:
    assert check(Observation()).ok


def test_the_chaos_merchants_differ_in_wechat_mode_and_bonus_rule() -> None:
    assert len(CHAOS_MERCHANTS) == 3
    assert {m.mode for m in CHAOS_MERCHANTS} == {"direct", "partner"}
    assert len({m.rule for m in CHAOS_MERCHANTS}) == 3
    assert len({m.mchid for m in CHAOS_MERCHANTS}) == 3
    assert all(m.order_expiry_seconds <= 10 for m in CHAOS_MERCHANTS)  # walk-aways close within a run


def test_plans_spread_over_the_merchants_and_each_card_belongs_to_one() -> None:
    merchants = [m.merchant_id for m in CHAOS_MERCHANTS]
    plans = plan_orders(5, 90, run_tag("all", 5), Shares(doomed=0.2), merchants)
    per_merchant = Counter(p.merchant_id for p in plans)
    assert set(per_merchant) == set(merchants)
    assert min(per_merchant.values()) == max(per_merchant.values()) == 30
    owners: dict[str, set[str]] = {}
    for plan in plans:
        owners.setdefault(plan.card_no, set()).add(plan.merchant_id)
    assert all(len(o) == 1 for o in owners.values())
    for merchant in merchants:  # every merchant has cards shared by several of its orders
        cards = Counter(p.card_no for p in plans if p.merchant_id == merchant and not p.doomed)
        assert max(cards.values()) > 1
    assert {len(p.card_no) for p in plans} == {16}


def test_the_long_run_adds_two_and_three_replicas_on_postgresql_unless_told_the_replicas() -> None:
    long = parse_args(["--long"])
    assert long.passes == [
        (1, "sqlite", "grpc"),
        (2, "postgresql", "grpc"),
        (3, "postgresql", "grpc"),
        (1, "sqlite", "http"),  # then the HTTP wire (WeChat Pay APIv3 over HTTPS)
        (2, "postgresql", "http"),
    ]
    assert long.seeds == 20 and long.orders == 200 and long.profiles == list(PROFILES)
    long_three = parse_args(["--long", "--replicas", "3", "--db", "postgresql"])
    assert long_three.passes == [(3, "postgresql", "grpc")]
    assert parse_args(["--replicas", "2", "--db", "postgresql", "--seed", "1"]).passes == [
        (2, "postgresql", "grpc")
    ]
    assert parse_args(["--seed", "1"]).passes == [(1, "sqlite", "grpc")]  # the default: as before
    assert parse_args(["--wire", "http", "--seed", "1"]).passes == [(1, "sqlite", "http")]
    assert parse_args(["--long", "--wire", "http"]).passes == [
        (1, "sqlite", "http"),
        (2, "postgresql", "http"),
        (3, "postgresql", "http"),
    ]


def test_the_http_wire_starts_its_own_stack_so_it_does_not_combine_with_targets() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--wire", "http", "--targets", "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3"])
    with pytest.raises(SystemExit):
        parse_args(["--wire", "smoke-signals"])
