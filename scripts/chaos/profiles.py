"""Chaos profiles: the fault rules set on each simulator and what the driver does besides.

A profile is data. ``card`` and ``wechat`` rules go to each simulator's ``FaultControl.SetFaults``
with the run's seed. ``doomed_share`` is the share of orders whose card the driver freezes right
after the pre-recharge, so the credit is definitively refused and the refund path runs (refunds
only happen for orders that cannot be credited). ``kills`` is how many times the recharge center
is killed with SIGKILL and restarted during the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protos.faults.v1 import faults_pb2

CARD = "/card.v1.CardSystem/"
PAY = "/wechatpay.v1.PaymentGateway/"

#: Card methods the recharge center calls (the driver's Consume and GetRecharge too).
CARD_FLOW = ("PreRecharge", "ConfirmRecharge", "VoidRecharge", "GetRecharge")
K = faults_pb2.FaultKind


@dataclass(frozen=True)
class Rule:
    method: str
    kind: faults_pb2.FaultKind.ValueType
    probability: float
    delay_ms: int = 0
    times: int = 0

    def to_proto(self) -> faults_pb2.FaultRule:
        return faults_pb2.FaultRule(
            method=self.method,
            kind=self.kind,
            probability=self.probability,
            delay_ms=self.delay_ms,
            times=self.times,
        )


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    card: tuple[Rule, ...] = ()
    wechat: tuple[Rule, ...] = ()
    doomed_share: float = 0.0
    kills: int = 0
    injects: bool = True

    @property
    def max_delay_ms(self) -> int:
        return max((r.delay_ms for r in (*self.card, *self.wechat) if r.kind != K.FAULT_KIND_OUTAGE),
                   default=0)


def _card(
    kind: faults_pb2.FaultKind.ValueType,
    probability: float,
    delay_ms: int = 0,
    methods: tuple[str, ...] = CARD_FLOW,
) -> list[Rule]:
    return [Rule(CARD + m, kind, probability, delay_ms) for m in methods]


CARD_FLAKY = (
    *_card(K.FAULT_KIND_UNAVAILABLE, 0.15, methods=(*CARD_FLOW, "Consume")),
    *_card(K.FAULT_KIND_DELAY, 0.15, 250, methods=("PreRecharge", "VoidRecharge", "GetRecharge", "Consume")),
    # A lock wait longer than the confirm deadline: the caller gives up, the credit lands later.
    Rule(CARD + "ConfirmRecharge", K.FAULT_KIND_DELAY, 0.2, 1200),
)
LATE_SUCCESS_CARD = tuple(_card(K.FAULT_KIND_LATE_SUCCESS, 0.25, 1500, ("PreRecharge", "ConfirmRecharge",
                                                                         "VoidRecharge")))
LATE_SUCCESS_WECHAT = (
    Rule(PAY + "CreateRefund", K.FAULT_KIND_LATE_SUCCESS, 0.3, 1200),
    Rule(PAY + "CloseOrder", K.FAULT_KIND_LATE_SUCCESS, 0.3, 1200),
)
LOST_CARD = tuple(_card(K.FAULT_KIND_LOST_RESPONSE, 0.25, methods=("PreRecharge", "ConfirmRecharge",
                                                                    "VoidRecharge", "Consume")))
LOST_WECHAT = tuple(
    Rule(PAY + m, K.FAULT_KIND_LOST_RESPONSE, 0.2) for m in ("CreatePrepay", "CreateRefund", "CloseOrder")
)
NOTIFY = (
    Rule("notify", K.FAULT_KIND_DROP, 0.3),
    Rule("notify", K.FAULT_KIND_DUPLICATE, 0.3),
    Rule("notify", K.FAULT_KIND_DELAY, 0.3, 1000),
)
REFUND_WECHAT = (
    Rule(PAY + "CreateRefund", K.FAULT_KIND_LATE_SUCCESS, 0.25, 1000),
    Rule(PAY + "CreateRefund", K.FAULT_KIND_REFUND_ABNORMAL, 0.1),
    Rule(PAY + "CreateRefund", K.FAULT_KIND_REFUND_PROCESSING, 0.35, 2000),
    Rule(PAY + "QueryRefund", K.FAULT_KIND_UNAVAILABLE, 0.2),
)


def _scaled(rules: tuple[Rule, ...], factor: float) -> tuple[Rule, ...]:
    return tuple(Rule(r.method, r.kind, round(r.probability * factor, 4), r.delay_ms, r.times) for r in rules)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("none", "no faults: the happy path under concurrency and spends", injects=False),
        Profile("card-flaky", "card system UNAVAILABLE and DELAY (lock waits, some past the deadline)",
                card=CARD_FLAKY, doomed_share=0.05),
        Profile("late-success", "card and refund/close calls processed after the caller gave up",
                card=LATE_SUCCESS_CARD, wechat=LATE_SUCCESS_WECHAT, doomed_share=0.1),
        Profile("lost-response", "processed and committed, then answered UNAVAILABLE",
                card=LOST_CARD, wechat=LOST_WECHAT, doomed_share=0.1),
        Profile("notify-chaos", "payment notifications dropped, duplicated, delayed (reordered)",
                wechat=NOTIFY, doomed_share=0.05),
        Profile("refund-chaos", "credits refused (frozen cards); refunds late, PROCESSING, ABNORMAL",
                wechat=REFUND_WECHAT, doomed_share=0.4),
        Profile("crash", "kill -9 the recharge center at seeded moments and restart it",
                doomed_share=0.05, kills=3, injects=False),
        Profile(
            "all",
            "every fault above at lower rates, plus kills",
            card=_scaled(CARD_FLAKY + LATE_SUCCESS_CARD + LOST_CARD, 0.4),
            wechat=_scaled(NOTIFY + REFUND_WECHAT + LATE_SUCCESS_WECHAT[1:] + LOST_WECHAT, 0.5),
            doomed_share=0.2,
            kills=2,
        ),
    )
}


@dataclass
class FaultTally:
    """Faults injected, by (service, method, kind name), from GetFaultStats; kills counted here."""

    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def add_stats(self, service: str, stats: faults_pb2.FaultStats) -> None:
        for count in stats.counts:
            kind = faults_pb2.FaultKind.Name(count.kind).removeprefix("FAULT_KIND_")
            key = (service, count.method, kind)
            self.counts[key] = self.counts.get(key, 0) + count.count

    def by_kind(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for (_, _, kind), n in self.counts.items():
            totals[kind] = totals.get(kind, 0) + n
        return dict(sorted(totals.items()))

    @property
    def total(self) -> int:
        return sum(self.counts.values())
