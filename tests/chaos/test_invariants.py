"""The checker on synthetic observations: a clean world passes; each planted bug is caught
with the invariant it breaks, naming the order or card."""

from __future__ import annotations

import dataclasses

from scripts.chaos.invariants import (
    BillRow,
    Card,
    JournalEntry,
    Observation,
    Order,
    PreRecharge,
    Refund,
    Spend,
    TimelineEvent,
    Trade,
    check,
)
from tests.chaos.world import CARD, call, clean_world, transitions


def found(obs: Observation) -> set[tuple[str, str]]:
    return {(v.invariant, v.subject) for v in check(obs).violations}


def set_order(obs: Observation, order_no: str, *, status: str, failure_reason: str | None = None) -> None:
    def changed(order: Order) -> Order:
        reason = order.failure_reason if failure_reason is None else failure_reason
        return dataclasses.replace(order, status=status, failure_reason=reason)

    obs.orders = [changed(o) if o.order_no == order_no else o for o in obs.orders]


def set_journal(obs: Observation, amounts: list[tuple[str, int, str]]) -> None:
    """Replace card C1's journal with consistent balance_after values and balance."""
    running, entries = 0, []
    for entry_id, (kind, amount, key) in enumerate(amounts, start=1):
        running += amount
        entries.append(JournalEntry(entry_id, CARD, kind, amount, running, key))
    obs.journals[CARD] = entries
    obs.cards[CARD] = Card(CARD, "ACTIVE", running)


CLEAN_JOURNAL = [
    ("RECHARGE_PRINCIPAL", 100_000, "O-CREDIT"),
    ("RECHARGE_BONUS", 20_000, "O-CREDIT"),
    ("CONSUME", -30_000, "spend-1"),
]


def refund_of(order_no: str, amount: int, status: str = "SUCCESS") -> tuple[BillRow, Refund]:
    number = f"{order_no}-R1"
    row = BillRow(order_no, "REFUND", amount, out_refund_no=number, refund_fen=amount, refund_status=status)
    return row, Refund(number, order_no, status, amount)


def test_a_clean_world_has_no_violations() -> None:
    result = check(clean_world())
    assert result.violations == []
    assert result.summary["by_status"] == {"CLOSED": 1, "CREDITED": 1, "REFUNDED": 1, "REJECTED": 1}
    assert result.summary["paid_fen"] == 105_000
    assert result.summary["credited_principal_fen"] + result.summary["refunded_fen"] == 105_000


def test_a_refund_without_a_void_breaks_i1_and_i3() -> None:
    obs = clean_world()
    row, refund = refund_of("O-CREDIT", 100_000)
    obs.bill_rows.append(row)
    obs.refunds[refund.out_refund_no] = refund
    obs.trades["O-CREDIT"] = Trade("O-CREDIT", "REFUND", 100_000, refunded_fen=100_000)
    violations = found(obs)
    assert ("I1", "O-CREDIT") in violations
    assert ("I3", "O-CREDIT") in violations
    assert ("I6", "O-CREDIT") in violations  # and nobody recorded the refund call


def test_a_refund_while_the_pre_recharge_is_still_recharging_breaks_i1() -> None:
    obs = clean_world()
    pre = obs.pre_recharges["O-REFUND"]
    obs.pre_recharges["O-REFUND"] = dataclasses.replace(pre, status="RECHARGING")
    assert ("I1", "O-REFUND") in found(obs)


def test_a_processing_refund_also_needs_a_void() -> None:
    obs = clean_world()
    row, _ = refund_of("O-CREDIT", 100_000, status="PROCESSING")
    obs.bill_rows.append(row)
    assert ("I1", "O-CREDIT") in found(obs)


def test_a_refund_before_the_void_in_the_timeline_breaks_i1() -> None:
    obs = clean_world()
    events = obs.timelines["O-REFUND"]
    obs.timelines["O-REFUND"] = [
        dataclasses.replace(e, seq={5: 7, 7: 5}.get(e.seq, e.seq)) for e in events
    ]
    assert found(obs) == {("I1", "O-REFUND")}


def test_a_void_that_answered_succeeded_does_not_fence_a_refund() -> None:
    obs = clean_world()
    obs.timelines["O-REFUND"] = [
        call(5, "VoidRecharge", detail="SUCCEEDED") if e.seq == 5 else e for e in obs.timelines["O-REFUND"]
    ]
    assert ("I1", "O-REFUND") in found(obs)


def test_a_double_credit_breaks_i2() -> None:
    obs = clean_world()
    set_journal(obs, [*CLEAN_JOURNAL, ("RECHARGE_PRINCIPAL", 100_000, "O-CREDIT")])
    violations = found(obs)
    assert ("I2", "O-CREDIT") in violations
    assert ("I3", "*") in violations  # and the totals no longer add up


def test_a_double_bonus_breaks_i2() -> None:
    obs = clean_world()
    set_journal(obs, [*CLEAN_JOURNAL, ("RECHARGE_BONUS", 20_000, "O-CREDIT")])
    assert ("I2", "O-CREDIT") in found(obs)


def test_credit_and_refund_of_one_order_breaks_i3() -> None:
    obs = clean_world()
    set_journal(obs, [*CLEAN_JOURNAL, ("RECHARGE_PRINCIPAL", 5_000, "O-REFUND")])
    violations = check(obs).violations
    assert any(v.invariant == "I3" and v.subject == "O-REFUND" and "credited and refunded" in v.message
               for v in violations)


def test_a_paid_order_neither_credited_nor_refunded_breaks_i3() -> None:
    obs = clean_world()
    obs.bill_rows = [r for r in obs.bill_rows if r.trade_state != "REFUND"]
    obs.refunds = {}
    obs.trades["O-REFUND"] = Trade("O-REFUND", "SUCCESS", 5_000)
    violations = check(obs).violations
    assert any(v.invariant == "I3" and v.subject == "O-REFUND" and "neither" in v.message for v in violations)


def test_a_paid_order_parked_in_manual_review_is_not_a_money_violation() -> None:
    obs = clean_world()
    obs.bill_rows = [r for r in obs.bill_rows if r.trade_state != "REFUND"]
    obs.refunds = {"O-REFUND-R1": Refund("O-REFUND-R1", "O-REFUND", "ABNORMAL", 5_000)}
    obs.trades["O-REFUND"] = Trade("O-REFUND", "SUCCESS", 5_000)
    set_order(obs, "O-REFUND", status="MANUAL_REVIEW", failure_reason="refund ABNORMAL")
    events = [e for e in obs.timelines["O-REFUND"] if e.seq != 8]
    events.append(TimelineEvent(seq=8, kind="transition", from_status="REFUNDING", to_status="MANUAL_REVIEW"))
    obs.timelines["O-REFUND"] = events
    result = check(obs)
    assert result.violations == []
    assert result.summary["manual_review_fen"] == 5_000


def test_manual_review_without_a_reason_breaks_i6() -> None:
    obs = clean_world()
    set_order(obs, "O-CLOSED", status="MANUAL_REVIEW", failure_reason="")
    obs.timelines["O-CLOSED"] = transitions("CREATED", "AWAITING_PAYMENT", "MANUAL_REVIEW")
    assert found(obs) == {("I6", "O-CLOSED")}


def test_a_credit_without_a_payment_breaks_i3() -> None:
    obs = clean_world()
    set_journal(obs, [*CLEAN_JOURNAL, ("RECHARGE_PRINCIPAL", 20_000, "O-CLOSED"),
                      ("RECHARGE_BONUS", 2_000, "O-CLOSED")])
    violations = check(obs).violations
    assert any(v.invariant == "I3" and v.subject == "O-CLOSED" and "without a payment" in v.message
               for v in violations)


def test_a_credit_of_the_wrong_bonus_breaks_i3() -> None:
    obs = clean_world()
    set_journal(obs, [("RECHARGE_PRINCIPAL", 100_000, "O-CREDIT"), ("RECHARGE_BONUS", 8_000, "O-CREDIT"),
                      ("CONSUME", -30_000, "spend-1")])
    assert ("I3", "O-CREDIT") in found(obs)


def test_a_negative_balance_breaks_i4() -> None:
    obs = clean_world()
    set_journal(obs, [*CLEAN_JOURNAL, ("CONSUME", -100_000, "spend-2")])
    obs.driver.spends.append(Spend("spend-2", CARD, 100_000, "done"))
    assert found(obs) == {("I4", CARD)}


def test_a_balance_that_differs_from_its_journal_breaks_i4() -> None:
    obs = clean_world()
    obs.cards[CARD] = Card(CARD, "ACTIVE", 95_000)
    assert found(obs) == {("I4", CARD)}


def test_a_broken_balance_after_chain_breaks_i4() -> None:
    obs = clean_world()
    entries = obs.journals[CARD]
    obs.journals[CARD] = [entries[0], dataclasses.replace(entries[1], balance_after_fen=125_000), entries[2]]
    messages = [v.message for v in check(obs).violations if v.invariant == "I4"]
    assert any("balance_after" in m for m in messages)


def test_a_spend_the_driver_saw_done_but_missing_from_the_journal_breaks_i4() -> None:
    obs = clean_world()
    obs.driver.spends.append(Spend("spend-9", CARD, 1_000, "done"))
    assert found(obs) == {("I4", CARD)}


def test_an_order_stuck_before_a_terminal_state_breaks_i5() -> None:
    obs = clean_world()
    set_order(obs, "O-CLOSED", status="AWAITING_PAYMENT")
    obs.timelines["O-CLOSED"] = transitions("CREATED", "AWAITING_PAYMENT")
    obs.trades["O-CLOSED"] = Trade("O-CLOSED", "NOTPAY", 20_000)
    obs.pre_recharges["O-CLOSED"] = PreRecharge("O-CLOSED", CARD, "RECHARGING", 20_000, 2_000, 22_000)
    assert found(obs) == {("I5", "O-CLOSED")}


def test_a_closed_order_still_payable_at_wechat_breaks_i3() -> None:
    obs = clean_world()
    obs.trades["O-CLOSED"] = Trade("O-CLOSED", "NOTPAY", 20_000)
    assert found(obs) == {("I3", "O-CLOSED")}


def test_a_payment_the_driver_made_but_wechat_forgot_breaks_i5() -> None:
    obs = clean_world()
    obs.driver.payments["O-CLOSED"] = "done"
    assert found(obs) == {("I5", "O-CLOSED")}


def test_an_order_the_driver_created_but_nobody_lists_breaks_i5() -> None:
    obs = clean_world()
    obs.driver.created["k9"] = "O-GONE"
    assert found(obs) == {("I5", "O-GONE")}


def test_an_empty_timeline_breaks_i6() -> None:
    obs = clean_world()
    obs.timelines["O-REJECTED"] = []
    assert found(obs) == {("I6", "O-REJECTED")}


def test_a_timeline_that_does_not_reach_the_current_status_breaks_i6() -> None:
    obs = clean_world()
    obs.timelines["O-CLOSED"] = transitions("CREATED", "AWAITING_PAYMENT")
    assert found(obs) == {("I6", "O-CLOSED")}


def test_a_timeline_with_a_gap_in_its_transitions_breaks_i6() -> None:
    obs = clean_world()
    events = transitions("CREATED", "AWAITING_PAYMENT", "PAID", "CREDITED")
    del events[2]  # AWAITING_PAYMENT -> PAID missing
    obs.timelines["O-CREDIT"] = [*events, call(10, "ConfirmRecharge")]
    assert found(obs) == {("I6", "O-CREDIT")}


def test_a_credit_with_no_confirm_call_in_the_timeline_breaks_i6() -> None:
    obs = clean_world()
    obs.timelines["O-CREDIT"] = transitions("CREATED", "AWAITING_PAYMENT", "PAID", "CREDITED")
    assert found(obs) == {("I6", "O-CREDIT")}


def test_a_payment_missing_from_the_trade_bill_is_reported() -> None:
    obs = clean_world()
    obs.bill_rows = [r for r in obs.bill_rows if r.out_trade_no != "O-CREDIT"]
    violations = found(obs)
    assert ("I3", "O-CREDIT") in violations
    assert ("I3", "*") in violations


def test_a_void_only_sent_with_no_answer_does_not_fence_a_refund() -> None:
    obs = clean_world()
    sent = call(5, "VoidRecharge", outcome="sent", detail="attempt 1/3: sent, answer pending")
    obs.timelines["O-REFUND"] = [sent if e.seq == 5 else e for e in obs.timelines["O-REFUND"]]
    assert found(obs) == {("I1", "O-REFUND")}
