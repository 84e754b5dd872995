"""The driver's choices and the profiles are data: seeded, complete, and replayable."""

from __future__ import annotations

from scripts.chaos.driver import Shares, plan_orders, run_tag
from scripts.chaos.invariants import Observation, check
from scripts.chaos.profiles import PROFILES


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
