"""I7, one actor per order: no two replicas have mutating calls on one order in flight at once.

Read from each order's timeline (``RechargeOps.GetOrderTimeline``), where every outgoing call that
changes something elsewhere is written *before* it is made (outcome ``sent``) and its answer after
(``done``, ``refused``, ``unknown``, or ``not_sent`` for a call announced but never made), each row
with the replica that wrote it (``node``) and when (``at``).

A call's interval, per node, for the mutating methods (:data:`MUTATING`):

- it starts at its ``sent`` row and ends at its answer (the sent row is written before the call,
  the answer after the call returned, so the interval holds the whole call). The answer of a
  ``sent`` row is a later row (by ``seq``) of the same node and method that answers, taken in
  order: first by the same ``actor`` (one flow's rows carry one actor: a sentinel's, the credit's
  ``system``), else the oldest one still open. One node may hold two such rows at once: the credit
  after a payment announces its confirm, finds that the node's own sentinel holds the order, and
  says ``not_sent`` after the sentinel sent its own;
- a ``sent`` row answered ``not_sent`` was an announcement of a call the flow never made (it
  stopped first, e.g. on finding that someone else holds the order's lease): no call, no interval;
- a ``sent`` row without an answer (none follows, or the same node and actor sends that method
  again first) belongs to a replica that died before its answer was written, or lost it. It lasts
  until that node was killed (the crash monkey's log, ``Observation.kills``: the first kill of the
  node at or after the sent row) — a dead process has nothing in flight. A node that was never
  killed after it gets no end: the call is open for the rest of the timeline, and any later call
  of another node overlaps it. (Not "until the next row of any node": a notification recorded by
  another replica says nothing about whether the call ended; not "a lease length": the lease may
  have been renewed while the call was out.)

Two intervals of *different* nodes on one order that overlap (each starts before the other ends)
are a violation. Intervals of one node are not compared: the node orders its own work (and a
restarted replica keeps its name). Times are the replicas' own clocks (``at``): one machine in a
chaos run; on several hosts the check needs their clocks in step. A call the other system
processes after its caller died (a late success) is the fencing's business (I1-I3), not this one's.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from scripts.chaos.observation import Observation, TimelineEvent, Violation

#: Remote methods that change something elsewhere (the ones the recharge center announces).
MUTATING = frozenset(
    {"PreRecharge", "ConfirmRecharge", "VoidRecharge", "CreatePrepay", "CloseOrder", "CreateRefund"}
)
SENT = "sent"
#: The answer row of a call that was announced (its ``sent`` row written) but never made.
NOT_SENT = "not_sent"


@dataclass(frozen=True)
class Call:
    """One mutating call on one order, from its ``sent`` row to its end."""

    order_no: str
    node: str
    method: str
    start: float
    end: float  # math.inf: never answered by a node that stayed up
    sent_seq: int
    #: The answer row's seq; 0 when there is none.
    answer_seq: int = 0
    #: The answer's outcome, or ``killed`` (the node died with it out), or ``unanswered``.
    outcome: str = ""

    def overlaps(self, other: Call) -> bool:
        return self.start < other.end and other.start < self.end

    def describe(self) -> str:
        ended = f"seq {self.answer_seq} {self.outcome}" if self.answer_seq else self.outcome
        return f"{self.method} by {self.node or '(no node)'} (seq {self.sent_seq} sent .. {ended})"


def short_method(method: str) -> str:
    """``/card.v1.CardSystem/ConfirmRecharge`` -> ``ConfirmRecharge``."""
    return method.rsplit("/", 1)[-1]


def _death(kills: Mapping[str, Sequence[float]], node: str, after: float) -> float | None:
    """The first kill of ``node`` at or after ``after``."""
    times = sorted(kills.get(node, ()))
    i = bisect_left(times, after)
    return times[i] if i < len(times) else None


def mutating_calls(
    order_no: str, events: Sequence[TimelineEvent], kills: Mapping[str, Sequence[float]]
) -> list[Call]:
    """The order's mutating calls, each with its interval (see the module's docstring)."""
    rows = sorted(
        (e for e in events if e.kind == "remote_call" and short_method(e.method) in MUTATING),
        key=lambda e: e.seq,
    )
    calls: list[Call] = []
    out: dict[tuple[str, str], list[TimelineEvent]] = {}  # (node, method) -> sent rows still open

    def unanswered(sent: TimelineEvent) -> Call:
        method = short_method(sent.method)
        died = _death(kills, sent.node, sent.at)
        if died is not None:
            return Call(order_no, sent.node, method, sent.at, died, sent.seq, outcome="killed")
        return Call(order_no, sent.node, method, sent.at, math.inf, sent.seq, outcome="unanswered")

    for row in rows:
        method = short_method(row.method)
        still_open = out.setdefault((row.node, method), [])
        mine = [s for s in still_open if s.actor == row.actor]
        if row.outcome == SENT:
            for earlier in mine:  # that flow sent it again: the earlier one never got an answer
                calls.append(unanswered(earlier))
                still_open.remove(earlier)
            still_open.append(row)
            continue
        if not still_open:  # an answer to nothing on record (I6's business, not this one's)
            continue
        sent = (mine or still_open)[0]
        still_open.remove(sent)
        if row.outcome != NOT_SENT:
            calls.append(Call(order_no, row.node, method, sent.at, row.at, sent.seq, row.seq, row.outcome))
    calls += [unanswered(sent) for still_open in out.values() for sent in still_open]
    return sorted(calls, key=lambda c: c.sent_seq)


def overlapping(calls: Sequence[Call]) -> Iterator[tuple[Call, Call]]:
    """Pairs of calls of different nodes in flight at once (earlier sent first)."""
    for a, b in combinations(sorted(calls, key=lambda c: (c.start, c.sent_seq)), 2):
        if a.node != b.node and a.overlaps(b):
            yield a, b


def _calls_of(obs: Observation, order_no: str) -> list[Call]:
    return mutating_calls(order_no, obs.timelines.get(order_no, []), obs.kills)


def check_one_actor(obs: Observation) -> Iterator[Violation]:
    """I7 over every order of the observation: one violation per overlapping pair."""
    for order in obs.orders:
        for a, b in overlapping(_calls_of(obs, order.order_no)):
            together = min(a.end, b.end) - max(a.start, b.start)
            how_long = "still open" if math.isinf(together) else f"{together * 1000:.0f} ms"
            yield Violation(
                "I7", order.order_no, f"{a.describe()} and {b.describe()} in flight at once ({how_long})"
            )


def summarize(obs: Observation) -> dict[str, object]:
    """How much I7 had to look at: mutating calls, the nodes that made them, the orders acted on
    by more than one node (hand-offs), the calls a killed node left without an answer, the calls
    announced but never made."""
    calls = [c for o in obs.orders for c in _calls_of(obs, o.order_no)]
    nodes_of: dict[str, set[str]] = {}
    for c in calls:
        nodes_of.setdefault(c.order_no, set()).add(c.node)
    return {
        "mutating_calls": len(calls),
        "nodes": sorted({c.node for c in calls}),
        "orders_acted_on_by_several_nodes": sum(1 for nodes in nodes_of.values() if len(nodes) > 1),
        "calls_cut_by_a_kill": sum(1 for c in calls if c.outcome == "killed"),
        "calls_never_answered": sum(1 for c in calls if c.outcome == "unanswered"),
        "calls_announced_never_made": sum(
            1 for o in obs.orders for e in obs.timelines.get(o.order_no, [])
            if e.kind == "remote_call" and e.outcome == NOT_SENT and short_method(e.method) in MUTATING
        ),
    }
