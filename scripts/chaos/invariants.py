"""The promises of DESIGN.md §4 and issue 12's, checked from outside on one observation of a quiet system.

An :class:`Observation` (``scripts/chaos/observation.py``) is plain data, gathered through public
RPCs only (see ``scripts/chaos/observe.py``): the recharge orders of each merchant and their
timelines, each order's pre-recharge and each card's journal at the card system, each merchant's
WeChat trade bill and per-order queries, reads made as the wrong merchant, and the driver's own log
of what it created, paid and spent as which merchant. Unit tests build observations by hand.

:func:`check` returns a :class:`CheckResult`: violations, each naming the invariant (I1..I6,
M1..M4), the order, card or merchant, and what was seen. What each invariant means here:

- I1 no premature refund: every refund WeChat knows of belongs to an order whose pre-recharge is
  VOIDED; in the order's timeline the first CreateRefund comes after a VoidRecharge that answered
  VOIDED.
- I2 exactly-once credit: at most one principal and one bonus entry per order number; a spend is
  journaled at most once per request id.
- I3 money conserved: a paid order is credited (principal = pay, bonus = the bonus fixed at
  pre-recharge) xor refunded once in full; an unpaid order neither; the order's status agrees
  with the card (CREDITED <-> SUCCEEDED) and with WeChat; total paid = credited + refunded.
- I4 no negative balance: balances and every balance_after >= 0, the balance equals the sum of the
  journal and each entry's balance_after chains; every spend the driver saw done is journaled.
- I5 nothing lost: every order terminal or in MANUAL_REVIEW; every order the driver created is
  listed; every payment the driver made is known to WeChat.
- I6 traceable: a non-empty timeline whose transitions chain from CREATED to the current status;
  the credit and the refund each have their remote call in it; MANUAL_REVIEW and REJECTED carry a
  reason.
- I7 one actor per order (``scripts/chaos/actors.py``): no two replicas (timeline ``node``) have
  mutating calls on one order in flight at once, each call from its ``sent`` row to its answer (or
  to the kill of the replica that sent it).
- M1..M4 between merchants (``scripts/chaos/isolation.py``): no cross-merchant credit (M1),
  payment or refund (M2), or visibility (M3); each merchant's money conserved on its own (M4).

Orders in MANUAL_REVIEW are parked, not settled: the money rule "credited xor refunded" is not
applied to them (they are counted in the summary), every other rule is.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from scripts.chaos.actors import check_one_actor, summarize
from scripts.chaos.isolation import check_isolation, merchant_totals
from scripts.chaos.observation import (
    BillRow,
    Card,
    CrossRead,
    DriverLog,
    JournalEntry,
    MerchantAccount,
    Observation,
    Order,
    PreRecharge,
    Refund,
    Spend,
    TimelineEvent,
    Trade,
    Violation,
)

__all__ = [
    "INVARIANTS", "SETTLED", "TERMINAL", "BillRow", "Card", "CheckResult", "CrossRead", "DriverLog",
    "JournalEntry", "MerchantAccount", "Observation", "Order", "PreRecharge", "Refund", "Spend",
    "TimelineEvent", "Trade", "Violation", "check", "void_answered_voided",
]

TERMINAL = frozenset({"CREDITED", "REFUNDED", "CLOSED", "REJECTED"})
SETTLED = TERMINAL | {"MANUAL_REVIEW"}
PAID_TRADE_STATES = frozenset({"SUCCESS", "REFUND"})
INVARIANTS = ("I1", "I2", "I3", "I4", "I5", "I6", "I7", "M1", "M2", "M3", "M4", "R")
_REFUND_RANK = {"SUCCESS": 4, "ABNORMAL": 3, "CLOSED": 2, "PROCESSING": 1}


@dataclass
class CheckResult:
    violations: list[Violation]
    summary: dict[str, Any]

    @property
    def ok(self) -> bool:
        return not self.violations

    def by_invariant(self) -> dict[str, int]:
        counts = Counter(v.invariant for v in self.violations)
        return {name: counts.get(name, 0) for name in INVARIANTS}


# --------------------------------------------------------------------------- indexes


@dataclass
class _Index:
    principals: dict[str, list[JournalEntry]]
    bonuses: dict[str, list[JournalEntry]]
    consumes: dict[str, list[JournalEntry]]
    refunds: dict[str, list[Refund]]
    bill_paid: dict[str, int]

    @classmethod
    def build(cls, obs: Observation) -> _Index:
        principals: dict[str, list[JournalEntry]] = defaultdict(list)
        bonuses: dict[str, list[JournalEntry]] = defaultdict(list)
        consumes: dict[str, list[JournalEntry]] = defaultdict(list)
        for entries in obs.journals.values():
            for entry in entries:
                target = {
                    "RECHARGE_PRINCIPAL": principals,
                    "RECHARGE_BONUS": bonuses,
                    "CONSUME": consumes,
                }.get(entry.kind)
                if target is not None:
                    target[entry.business_key].append(entry)
        bill_paid: dict[str, int] = {}
        for row in obs.bill_rows:
            if row.trade_state == "SUCCESS":
                bill_paid[row.out_trade_no] = row.amount_total_fen
        return cls(principals, bonuses, consumes, _merge_refunds(obs), bill_paid)


def _merge_refunds(obs: Observation) -> dict[str, list[Refund]]:
    """Every refund WeChat knows of, by order: QueryRefund wins over the bill's snapshot."""
    merged: dict[str, Refund] = {}
    for row in obs.bill_rows:
        if row.trade_state != "REFUND":
            continue
        seen = merged.get(row.out_refund_no)
        if seen is None or _REFUND_RANK.get(row.refund_status, 0) > _REFUND_RANK.get(seen.status, 0):
            merged[row.out_refund_no] = Refund(
                row.out_refund_no, row.out_trade_no, row.refund_status, row.refund_fen, row.mchid
            )
    merged.update(obs.refunds)
    by_order: dict[str, list[Refund]] = defaultdict(list)
    for refund in merged.values():
        by_order[refund.out_trade_no].append(refund)
    return by_order


def _is_paid(obs: Observation, index: _Index, order_no: str) -> bool:
    trade = obs.trades.get(order_no)
    return (trade is not None and trade.trade_state in PAID_TRADE_STATES) or order_no in index.bill_paid


# --------------------------------------------------------------------------- checks per order


def _check_money(obs: Observation, index: _Index, order: Order) -> Iterator[Violation]:
    no = order.order_no
    pre = obs.pre_recharges.get(no)
    principals = index.principals.get(no, [])
    bonuses = index.bonuses.get(no, [])
    refunds = index.refunds.get(no, [])
    refunded = [r for r in refunds if r.status == "SUCCESS"]
    paid = _is_paid(obs, index, no)
    credited = bool(principals)

    def v(invariant: str, message: str) -> Violation:
        return Violation(invariant, no, message)

    # I2: exactly-once credit.
    if len(principals) > 1:
        ids = [e.entry_id for e in principals]
        yield v("I2", f"credited {len(principals)} times (principal entries {ids})")
    if len(bonuses) > 1:
        yield v("I2", f"bonus credited {len(bonuses)} times")
    # I3: what was credited is what was paid plus the bonus fixed at pre-recharge.
    for entry in principals:
        if entry.amount_fen != order.pay_amount_fen:
            yield v("I3", f"principal {entry.amount_fen} fen != pay amount {order.pay_amount_fen} fen")
        if entry.card_no != order.card_no:
            yield v("I3", f"credited card {entry.card_no}, order is for card {order.card_no}")
    fixed_bonus = pre.bonus_fen if pre is not None and pre.status != "MISSING" else order.bonus_fen
    if credited and fixed_bonus > 0 and not bonuses:
        yield v("I3", f"principal credited without its bonus of {fixed_bonus} fen")
    for entry in bonuses:
        if entry.amount_fen != fixed_bonus:
            yield v("I3", f"bonus {entry.amount_fen} fen != bonus fixed at pre-recharge {fixed_bonus} fen")
    if bonuses and not credited:
        yield v("I3", "bonus credited without its principal")
    if pre is not None and pre.status != "MISSING" and order.bonus_fen != pre.bonus_fen:
        yield v("I3", f"order bonus {order.bonus_fen} fen != pre-recharge bonus {pre.bonus_fen} fen")
    # I3: credited xor refunded when paid; neither when unpaid.
    if credited and not paid:
        trade = obs.trades.get(no)
        state = trade.trade_state if trade else "NOT_FOUND"
        yield v("I3", f"credit without a payment (WeChat trade state {state})")
    if credited and refunded:
        yield v("I3", f"credited and refunded ({', '.join(r.out_refund_no for r in refunded)})")
    if paid and not credited and not refunded and order.status != "MANUAL_REVIEW":
        yield v("I3", f"paid but neither credited nor refunded (status {order.status})")
    if len(refunded) > 1:
        yield v("I3", f"refunded {len(refunded)} times ({', '.join(r.out_refund_no for r in refunded)})")
    refunded_fen = sum(r.refund_fen for r in refunded)
    if refunded and refunded_fen != order.pay_amount_fen:
        yield v("I3", f"refunded {refunded_fen} fen of {order.pay_amount_fen} fen paid")
    if refunds and not paid:
        yield v("I3", "refund for an unpaid order")
    # I1, from the card system's side: a refund exists only for a VOIDED pre-recharge.
    if refunds and (pre is None or pre.status != "VOIDED"):
        state = pre.status if pre is not None else "not observed"
        yield v("I1", f"refund {refunds[0].out_refund_no} ({refunds[0].status}) but pre-recharge is {state}")
    yield from _check_status_agrees(obs, order, pre, credited, bool(refunded), paid)


def _check_status_agrees(
    obs: Observation, order: Order, pre: PreRecharge | None, credited: bool, refunded: bool, paid: bool
) -> Iterator[Violation]:
    no, status = order.order_no, order.status
    pre_status = pre.status if pre is not None else "not observed"
    if status == "CREDITED":
        if pre_status != "SUCCEEDED":
            yield Violation("I3", no, f"order CREDITED but pre-recharge is {pre_status}")
        if not credited:
            yield Violation("I3", no, "order CREDITED but the card journal has no credit for it")
    elif status in ("REFUNDED", "CLOSED", "REJECTED") and pre_status == "SUCCEEDED":
        yield Violation("I3", no, f"order {status} but the card credited it (pre-recharge SUCCEEDED)")
    if status == "REFUNDED" and not refunded:
        yield Violation("I3", no, "order REFUNDED but WeChat has no successful refund for it")
    if status in ("CLOSED", "REJECTED") and paid:
        yield Violation("I3", no, f"order {status} but WeChat says it was paid")
    trade = obs.trades.get(no)
    if status == "CLOSED" and trade is not None and trade.trade_state == "NOTPAY":
        yield Violation("I3", no, "order CLOSED but still payable at WeChat (NOTPAY, not closed)")


def _check_settled(order: Order) -> Iterator[Violation]:
    if order.status not in SETTLED:
        yield Violation("I5", order.order_no, f"not settled: still {order.status}")
    if order.status in ("MANUAL_REVIEW", "REJECTED") and not order.failure_reason.strip():
        yield Violation("I6", order.order_no, f"{order.status} without a failure_reason")


# --------------------------------------------------------------------------- timelines


def _is_call(event: TimelineEvent, name: str) -> bool:
    return event.kind == "remote_call" and event.method.rsplit("/", 1)[-1].lower().endswith(name.lower())


def void_answered_voided(event: TimelineEvent) -> bool:
    """A VoidRecharge attempt that came back done with the pre-recharge VOIDED.

    The recharge center records the answer's state in ``detail`` (or the outcome); an answer of
    SUCCEEDED (the credit won) or RECHARGING is not a fence.
    """
    if not _is_call(event, "VoidRecharge") or event.outcome != "done":
        return False
    text = f"{event.detail} {event.error}".upper()
    return "SUCCEEDED" not in text and "RECHARGING" not in text


def _check_timeline(obs: Observation, index: _Index, order: Order) -> Iterator[Violation]:
    no = order.order_no
    events = sorted(obs.timelines.get(no, []), key=lambda e: e.seq)
    if not events:
        yield Violation("I6", no, "empty timeline")
        return
    seqs = [e.seq for e in events]
    if len(set(seqs)) != len(seqs):
        yield Violation("I6", no, "timeline has repeated sequence numbers")
    yield from _check_chain(order, [e for e in events if e.kind == "transition"])
    refund_calls = [e for e in events if _is_call(e, "CreateRefund")]
    if index.refunds.get(no) and not refund_calls:
        yield Violation("I6", no, "WeChat has a refund for this order but its timeline has no CreateRefund")
    if refund_calls:
        first = refund_calls[0]
        fenced = any(void_answered_voided(e) for e in events if e.seq < first.seq)
        if not fenced:
            yield Violation(
                "I1", no, f"CreateRefund (seq {first.seq}) before any VoidRecharge answered VOIDED"
            )
    if index.principals.get(no) and not any(_is_call(e, "ConfirmRecharge") for e in events):
        yield Violation("I6", no, "credited at the card but its timeline has no ConfirmRecharge")


def _check_chain(order: Order, transitions: list[TimelineEvent]) -> Iterator[Violation]:
    no = order.order_no
    if not transitions:
        if order.status != "CREATED":
            yield Violation("I6", no, f"no transitions in the timeline, status is {order.status}")
        return
    first = transitions[0]
    starts = first.from_status == "CREATED" or (
        first.from_status == "UNSPECIFIED" and first.to_status == "CREATED"
    )
    if not starts:
        yield Violation("I6", no, f"timeline starts at {first.from_status}->{first.to_status}, not CREATED")
    for before, after in pairwise(transitions):
        if after.from_status != before.to_status:
            yield Violation(
                "I6",
                no,
                f"transition chain broken at seq {after.seq}: {before.to_status} then "
                f"{after.from_status}->{after.to_status}",
            )
    if transitions[-1].to_status != order.status:
        yield Violation(
            "I6", no, f"timeline ends at {transitions[-1].to_status}, order is {order.status}"
        )


# --------------------------------------------------------------------------- cards


def _check_card(obs: Observation, card: Card) -> Iterator[Violation]:
    no = card.card_no
    entries = sorted(obs.journals.get(no, []), key=lambda e: e.entry_id)
    if len({e.entry_id for e in entries}) != len(entries):
        yield Violation("I4", no, "journal has repeated entry ids")
    running = 0
    for entry in entries:
        running += entry.amount_fen
        if entry.card_no != no:
            yield Violation("I4", no, f"journal entry {entry.entry_id} belongs to card {entry.card_no}")
        if entry.balance_after_fen != running:
            yield Violation(
                "I4",
                no,
                f"entry {entry.entry_id} ({entry.kind} {entry.amount_fen}) balance_after "
                f"{entry.balance_after_fen} != running sum {running}",
            )
        if entry.balance_after_fen < 0 or running < 0:
            yield Violation("I4", no, f"balance negative after entry {entry.entry_id}: {running} fen")
    if card.balance_fen < 0:
        yield Violation("I4", no, f"negative balance {card.balance_fen} fen")
    if card.balance_fen != running:
        yield Violation("I4", no, f"balance {card.balance_fen} fen != journal sum {running} fen")


# --------------------------------------------------------------------------- driver & totals


def _check_driver(obs: Observation, index: _Index) -> Iterator[Violation]:
    listed = {o.order_no for o in obs.orders}
    for key, order_no in sorted(obs.driver.created.items()):
        if order_no not in listed:
            yield Violation("I5", order_no, f"created (key {key}) but not listed by the recharge center")
    for order_no, outcome in sorted(obs.driver.payments.items()):
        if outcome != "done":
            continue
        trade = obs.trades.get(order_no)
        if trade is not None and trade.trade_state not in PAID_TRADE_STATES:
            yield Violation("I5", order_no, f"the driver paid it, WeChat says {trade.trade_state}")
    for spend in obs.driver.spends:
        entries = index.consumes.get(spend.request_id, [])
        if len(entries) > 1:
            yield Violation("I2", spend.card_no, f"spend {spend.request_id} journaled {len(entries)} times")
        if spend.outcome == "done":
            if not entries:
                yield Violation("I4", spend.card_no, f"spend {spend.request_id} done but not in the journal")
            elif any(e.amount_fen != -spend.amount_fen for e in entries):
                yield Violation(
                    "I4", spend.card_no, f"spend {spend.request_id} journaled with another amount"
                )


def _totals(obs: Observation, index: _Index) -> dict[str, int]:
    """Money over orders that are not parked in MANUAL_REVIEW."""
    counted = {o.order_no for o in obs.orders if o.status != "MANUAL_REVIEW"}
    paid = sum(amount for no, amount in index.bill_paid.items() if no in counted)
    credited = sum(e.amount_fen for no in counted for e in index.principals.get(no, []))
    refunded = sum(
        r.refund_fen for no in counted for r in index.refunds.get(no, []) if r.status == "SUCCESS"
    )
    parked = sum(o.pay_amount_fen for o in obs.orders if o.status == "MANUAL_REVIEW")
    return {"paid_fen": paid, "credited_principal_fen": credited, "refunded_fen": refunded,
            "manual_review_fen": parked}


def _check_totals(obs: Observation, index: _Index, totals: dict[str, int]) -> Iterator[Violation]:
    mine = {o.order_no for o in obs.orders}
    for no, trade in sorted(obs.trades.items()):
        if no in mine and trade.trade_state in PAID_TRADE_STATES and no not in index.bill_paid:
            yield Violation("I3", no, "paid (QueryOrder) but missing from the trade bill")
    if totals["paid_fen"] != totals["credited_principal_fen"] + totals["refunded_fen"]:
        yield Violation(
            "I3",
            "*",
            f"total paid {totals['paid_fen']} fen != credited principal "
            f"{totals['credited_principal_fen']} + refunded {totals['refunded_fen']}",
        )


# --------------------------------------------------------------------------- entry point


def check(obs: Observation) -> CheckResult:
    """Every invariant over one observation; violations sorted by invariant then subject."""
    index = _Index.build(obs)
    violations: list[Violation] = []
    for order in obs.orders:
        violations.extend(_check_money(obs, index, order))
        violations.extend(_check_settled(order))
        violations.extend(_check_timeline(obs, index, order))
    for card in obs.cards.values():
        violations.extend(_check_card(obs, card))
    violations.extend(_check_driver(obs, index))
    violations.extend(check_one_actor(obs))
    totals = _totals(obs, index)
    violations.extend(_check_totals(obs, index, totals))
    per_merchant = merchant_totals(obs, index.principals, index.refunds)
    violations.extend(check_isolation(obs, index.principals, index.bonuses, index.refunds, per_merchant))
    violations = _dedupe(violations)
    violations.sort(key=lambda v: (v.invariant, v.subject, v.message))
    summary: dict[str, Any] = {
        "orders": len(obs.orders),
        "by_status": dict(sorted(Counter(o.status for o in obs.orders).items())),
        "cards": len(obs.cards),
        "spends_done": sum(1 for s in obs.driver.spends if s.outcome == "done"),
        **totals,
        "cross_reads": len(obs.cross_reads),
        "merchants": per_merchant,
        "one_actor": summarize(obs),
    }
    return CheckResult(violations, summary)


def _dedupe(violations: Iterable[Violation]) -> list[Violation]:
    return list(dict.fromkeys(violations))
