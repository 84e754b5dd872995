"""Fault rules and seeded decisions. No gRPC here (only the proto's FaultKind numbers).

A rule matches a method by exact path, ``*``, or a glob (``/card.v1.CardSystem/*``); the WeChat
simulator's outgoing notifications use the method name ``notify``. Each rule draws from its own
random stream seeded from the plan's seed and the rule's position, so the same seed and the same
sequence of calls give the same decisions. ``times`` caps how often a rule fires (0 = no limit).
OUTAGE rules are not drawn per call: they make every matching call fail for ``delay_ms`` from the
moment the plan is set.
"""

from __future__ import annotations

import enum
import fnmatch
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from protos.faults.v1 import faults_pb2 as pb


class FaultKind(enum.IntEnum):
    """``faults.v1.FaultKind`` without its prefix; what each kind does is written in the proto.
    Numbers come from the proto; a unit test checks that every proto kind has a member here."""

    UNAVAILABLE = pb.FAULT_KIND_UNAVAILABLE
    DELAY = pb.FAULT_KIND_DELAY
    LATE_SUCCESS = pb.FAULT_KIND_LATE_SUCCESS
    LOST_RESPONSE = pb.FAULT_KIND_LOST_RESPONSE
    OUTAGE = pb.FAULT_KIND_OUTAGE
    DROP = pb.FAULT_KIND_DROP
    DUPLICATE = pb.FAULT_KIND_DUPLICATE
    REFUND_PROCESSING = pb.FAULT_KIND_REFUND_PROCESSING
    REFUND_ABNORMAL = pb.FAULT_KIND_REFUND_ABNORMAL
    BILL_MISSING_LINE = pb.FAULT_KIND_BILL_MISSING_LINE
    BILL_CHANGED_AMOUNT = pb.FAULT_KIND_BILL_CHANGED_AMOUNT
    BILL_EXTRA_PAYMENT = pb.FAULT_KIND_BILL_EXTRA_PAYMENT
    JOURNAL_EXTRA_ENTRY = pb.FAULT_KIND_JOURNAL_EXTRA_ENTRY


@dataclass(frozen=True)
class FaultRule:
    method: str
    kind: FaultKind
    probability: float = 1.0
    delay_ms: int = 0
    times: int = 0

    def validate(self) -> None:
        if not self.method:
            raise ValueError("rules.method: required (a method path, 'notify' or '*')")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("rules.probability: must be within [0, 1]")
        if self.delay_ms < 0:
            raise ValueError("rules.delay_ms: must not be negative")
        if self.times < 0:
            raise ValueError("rules.times: must not be negative")

    def matches(self, method: str) -> bool:
        if self.method == "*":
            return True
        return self.method == method or fnmatch.fnmatchcase(method, self.method)

    @property
    def delay_s(self) -> float:
        return self.delay_ms / 1000.0


@dataclass(frozen=True)
class FaultPlan:
    seed: int = 0
    rules: tuple[FaultRule, ...] = ()


@dataclass
class _RuleState:
    rule: FaultRule
    rng: random.Random
    fired: int = 0
    outage_until: float = 0.0


@dataclass
class FaultStatsSnapshot:
    seed: int
    rules: tuple[FaultRule, ...]
    counts: dict[tuple[str, FaultKind], int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class FaultEngine:
    """Holds the active plan and decides, call by call, which fault (if any) applies."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._plan = FaultPlan()
        self._states: list[_RuleState] = []
        self._counts: Counter[tuple[str, FaultKind]] = Counter()

    def set_plan(self, plan: FaultPlan) -> None:
        for rule in plan.rules:
            rule.validate()
        now = self._clock()
        with self._lock:
            self._plan = plan
            self._counts = Counter()
            self._states = [
                _RuleState(
                    rule,
                    random.Random(plan.seed * 1_000_003 + index),
                    outage_until=now + rule.delay_s if rule.kind is FaultKind.OUTAGE else 0.0,
                )
                for index, rule in enumerate(plan.rules)
            ]

    def clear(self) -> None:
        self.set_plan(FaultPlan(seed=self._plan.seed))

    def draw(self, method: str, kinds: Collection[FaultKind]) -> FaultRule | None:
        """The first rule of ``kinds`` that fires for this call of ``method``, counted; or None."""
        now = self._clock()
        with self._lock:
            for state in self._states:
                rule = state.rule
                if rule.kind not in kinds or not rule.matches(method):
                    continue
                if rule.kind is FaultKind.OUTAGE:
                    if now < state.outage_until:
                        self._counts[(method, rule.kind)] += 1
                        return rule
                    continue
                if rule.times and state.fired >= rule.times:
                    continue
                probability = rule.probability or 1.0
                if state.rng.random() >= probability:
                    continue
                state.fired += 1
                self._counts[(method, rule.kind)] += 1
                return rule
        return None

    def stats(self) -> FaultStatsSnapshot:
        with self._lock:
            return FaultStatsSnapshot(self._plan.seed, self._plan.rules, dict(self._counts))
