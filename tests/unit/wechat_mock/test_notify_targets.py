"""Several notify targets (pure): the ``--notify-target`` list and how it is refused, and the
replica set that spreads attempts over the targets (fake clients, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from rc_common.settings import parse_settings
from wechat_mock.service_layer.ports import DeliveryOutcome, DeliveryResult
from wechat_mock.service_layer.replicas import ReplicaSet
from wechat_mock.settings import WechatSettings

ACKNOWLEDGED = DeliveryOutcome.ACKNOWLEDGED
REFUSED = DeliveryOutcome.REFUSED
NO_ANSWER = DeliveryOutcome.NO_ANSWER


def parse(*argv: str) -> WechatSettings:
    return parse_settings(WechatSettings, list(argv), prog="python -m wechat_mock", description="")


def test_one_notify_target_still_works_and_several_are_kept_in_order() -> None:
    assert parse("--notify-target", "127.0.0.1:50051").notify_targets == ("127.0.0.1:50051",)
    several = parse("--notify-target", "10.0.0.1:50051, 10.0.0.2:50051,recharge-b:50051")
    assert several.notify_targets == ("10.0.0.1:50051", "10.0.0.2:50051", "recharge-b:50051")
    assert parse("--notify-target", "").notify_targets == ()


@pytest.mark.parametrize(
    ("targets", "problem"),
    [
        ("127.0.0.1:50051,not-an-address", "'not-an-address' is not host:port"),
        ("127.0.0.1:50051,127.0.0.1:", "'127.0.0.1:' is not host:port"),
        ("127.0.0.1:50051,,127.0.0.1:50052", "empty entry in '127.0.0.1:50051,,127.0.0.1:50052'"),
        ("127.0.0.1:50051,", "empty entry"),
        ("127.0.0.1:50051,127.0.0.1:50051", "127.0.0.1:50051 is listed twice"),
        ("127.0.0.1:0", "'127.0.0.1:0': port must be 1-65535"),
        ("127.0.0.1:70000", "port must be 1-65535"),
    ],
)
def test_a_bad_notify_target_is_refused_naming_the_flag(
    capsys: pytest.CaptureFixture[str], targets: str, problem: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse("--notify-target", targets)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "error: --notify-target: " in error and problem in error


@dataclass
class Replica:
    """A fake client for one target, answering ``outcome`` every time; ``tried`` is shared."""

    target: str
    outcome: DeliveryOutcome
    tried: list[str] = field(default_factory=list)

    async def deliver(self, headers: Mapping[str, str], body: bytes, timeout_s: float) -> DeliveryResult:
        self.tried.append(self.target)
        return DeliveryResult(self.outcome, f"{self.target} {self.outcome.value}", self.target)


def replicas(*outcomes: DeliveryOutcome) -> tuple[ReplicaSet, list[str]]:
    tried: list[str] = []
    return ReplicaSet([Replica(f"r{i}", outcome, tried) for i, outcome in enumerate(outcomes)]), tried


async def deliver(replica_set: ReplicaSet) -> DeliveryResult:
    return await replica_set.deliver({}, b"{}", 1.0)


async def test_attempts_start_at_each_replica_in_turn() -> None:
    replica_set, tried = replicas(ACKNOWLEDGED, ACKNOWLEDGED, ACKNOWLEDGED)
    targets = [(await deliver(replica_set)).target for _ in range(6)]
    assert targets == ["r0", "r1", "r2", "r0", "r1", "r2"]
    assert tried == targets  # one call each: nothing tried past a SUCCESS


async def test_a_replica_with_no_answer_is_passed_over_within_the_attempt() -> None:
    replica_set, tried = replicas(NO_ANSWER, NO_ANSWER, ACKNOWLEDGED)
    result = await deliver(replica_set)
    assert result.acknowledged and result.target == "r2"
    assert result.skipped == ("r0 no_answer", "r1 no_answer")
    assert tried == ["r0", "r1", "r2"]
    second = await deliver(replica_set)  # starts at r1: passes over it, then r2 answers
    assert (second.target, second.skipped) == ("r2", ("r1 no_answer",))


async def test_a_refusal_is_an_answer_and_no_other_replica_is_tried() -> None:
    replica_set, tried = replicas(REFUSED, ACKNOWLEDGED)
    result = await deliver(replica_set)
    assert (result.outcome, result.target, result.skipped) == (REFUSED, "r0", ())
    assert tried == ["r0"]


async def test_an_attempt_fails_only_when_no_replica_answered() -> None:
    replica_set, tried = replicas(NO_ANSWER, NO_ANSWER)
    result = await deliver(replica_set)
    assert result.outcome is NO_ANSWER and result.target == ""
    assert result.detail == "no target answered: r0 no_answer; r1 no_answer"
    assert tried == ["r0", "r1"]


async def test_one_target_answers_as_it_is_and_none_is_a_failed_attempt() -> None:
    single, _ = replicas(NO_ANSWER)
    assert await deliver(single) == DeliveryResult(NO_ANSWER, "r0 no_answer", "r0")
    none = await deliver(ReplicaSet([]))
    assert (none.outcome, none.detail) == (NO_ANSWER, "no --notify-target configured")
