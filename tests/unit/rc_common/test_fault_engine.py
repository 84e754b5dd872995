"""Fault rules: matching, probability, times, outage windows, seeded replay, counters."""

from __future__ import annotations

import pytest

from protos.faults.v1 import faults_pb2
from rc_common.faults import FaultEngine, FaultKind, FaultPlan, FaultRule

CONFIRM = "/card.v1.CardSystem/ConfirmRecharge"
ALL = frozenset(FaultKind)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def decisions(seed: int, calls: int = 200) -> list[bool]:
    engine = FaultEngine()
    engine.set_plan(FaultPlan(seed, (FaultRule("*", FaultKind.UNAVAILABLE, probability=0.3),)))
    return [engine.draw(CONFIRM, ALL) is not None for _ in range(calls)]


def test_fault_kinds_are_the_proto_enum() -> None:
    in_proto = {name: number for name, number in faults_pb2.FaultKind.items() if number}
    assert {f"FAULT_KIND_{kind.name}": kind.value for kind in FaultKind} == in_proto


def test_same_seed_replays_the_same_decisions() -> None:
    assert decisions(42) == decisions(42)
    assert decisions(42) != decisions(43)
    assert 20 < sum(decisions(42)) < 100  # about 30% of 200


def test_times_caps_how_often_a_rule_fires() -> None:
    engine = FaultEngine()
    engine.set_plan(FaultPlan(1, (FaultRule(CONFIRM, FaultKind.LOST_RESPONSE, times=2),)))
    hits = [engine.draw(CONFIRM, ALL) for _ in range(5)]
    assert [h is not None for h in hits] == [True, True, False, False, False]
    assert engine.stats().counts == {(CONFIRM, FaultKind.LOST_RESPONSE): 2}


def test_rules_match_exact_glob_and_star_but_not_other_methods() -> None:
    engine = FaultEngine()
    engine.set_plan(
        FaultPlan(
            0,
            (
                FaultRule("/card.v1.CardAdmin/*", FaultKind.UNAVAILABLE),
                FaultRule(CONFIRM, FaultKind.DELAY, delay_ms=5),
            ),
        )
    )
    assert engine.draw("/card.v1.CardAdmin/OpenCard", ALL).kind is FaultKind.UNAVAILABLE  # type: ignore[union-attr]
    assert engine.draw(CONFIRM, ALL).kind is FaultKind.DELAY  # type: ignore[union-attr]
    assert engine.draw("/card.v1.CardSystem/GetCard", ALL) is None


def test_kinds_filter_lets_callers_ask_only_for_their_faults() -> None:
    engine = FaultEngine()
    engine.set_plan(FaultPlan(0, (FaultRule("notify", FaultKind.DROP),)))
    assert engine.draw("notify", {FaultKind.UNAVAILABLE}) is None
    assert engine.draw("notify", {FaultKind.DROP}) is not None


def test_outage_refuses_everything_for_its_window_then_ends() -> None:
    clock = FakeClock()
    engine = FaultEngine(clock)
    engine.set_plan(FaultPlan(0, (FaultRule("*", FaultKind.OUTAGE, delay_ms=1000),)))
    assert engine.draw(CONFIRM, ALL) is not None
    clock.now += 0.999
    assert engine.draw("/x/Y", ALL) is not None
    clock.now += 0.002
    assert engine.draw(CONFIRM, ALL) is None


def test_clear_restores_normal_service() -> None:
    engine = FaultEngine()
    engine.set_plan(FaultPlan(3, (FaultRule("*", FaultKind.UNAVAILABLE),)))
    engine.clear()
    assert engine.draw(CONFIRM, ALL) is None
    assert engine.stats().seed == 3


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (FaultRule("", FaultKind.DROP), "rules.method"),
        (FaultRule("*", FaultKind.DROP, probability=1.5), "rules.probability"),
        (FaultRule("*", FaultKind.DELAY, delay_ms=-1), "rules.delay_ms"),
        (FaultRule("*", FaultKind.DROP, times=-1), "rules.times"),
    ],
)
def test_invalid_rules_are_refused_naming_the_field(rule: FaultRule, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultEngine().set_plan(FaultPlan(0, (rule,)))
