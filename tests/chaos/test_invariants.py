"""The checker on synthetic observations: a clean world passes; each planted bug is caught
with the invariant it breaks, naming the order, card or merchant. The merchant promises (M1..M4)
each have their own plants: a credit, payment, refund or read that crosses merchants."""

from __future__ import annotations

import dataclasses

from scripts.chaos.invariants import (
    BillRow,
    Card,
    CrossRead,
    JournalEntry,
    Observation,
    Order,
    PreRecharge,
    Refund,
    Spend,
    TimelineEvent,
    check,
)
from tests.chaos.world import CARD, CARD_B, SHOP_A, SHOP_B, A, B, call, clean_world, transitions


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
    obs.cards[CARD] = Card(CARD, "ACTIVE", running, merchant_id=A)


CLEAN_JOURNAL = [
    ("RECHARGE_PRINCIPAL", 100_000, "O-CREDIT"),
    ("RECHARGE_BONUS", 20_000, "O-CREDIT"),
    ("CONSUME", -30_000, "spend-1"),
]


def refund_of(order_no: str, amount: int, status: str = "SUCCESS") -> tuple[BillRow, Refund]:
    """A refund of one of SHOP_A's orders, booked under SHOP_A's account."""
    number = f"{order_no}-R1"
    row = BillRow(order_no, "REFUND", amount, out_refund_no=number, refund_fen=amount, refund_status=status,
                  mchid=SHOP_A.mchid, bill_of=A)
    return row, Refund(number, order_no, status, amount, mchid=SHOP_A.mchid)


def trade(obs: Observation, order_no: str, state: str, refunded_fen: int = 0) -> None:
    """WeChat's view of the order changed to ``state`` (same merchant, same amount)."""
    obs.trades[order_no] = dataclasses.replace(
        obs.trades[order_no], trade_state=state, refunded_fen=refunded_fen
    )


def test_a_clean_world_has_no_violations() -> None:
    result = check(clean_world())
    assert result.violations == []
    assert result.summary["by_status"] == {"CLOSED": 1, "CREDITED": 2, "REFUNDED": 1, "REJECTED": 1}
    assert result.summary["paid_fen"] == 135_000
    assert result.summary["credited_principal_fen"] + result.summary["refunded_fen"] == 135_000
    per_merchant = result.summary["merchants"]
    assert per_merchant[A]["paid_fen"] == 105_000
    assert per_merchant[A]["credited_principal_fen"] + per_merchant[A]["refunded_fen"] == 105_000
    assert per_merchant[B]["paid_fen"] == per_merchant[B]["credited_principal_fen"] == 30_000
    assert result.summary["cross_reads"] == 7


def test_a_refund_without_a_void_breaks_i1_and_i3() -> None:
    obs = clean_world()
    row, refund = refund_of("O-CREDIT", 100_000)
    obs.bill_rows.append(row)
    obs.refunds[refund.out_refund_no] = refund
    trade(obs, "O-CREDIT", "REFUND", refunded_fen=100_000)
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
    trade(obs, "O-REFUND", "SUCCESS")
    violations = check(obs).violations
    assert any(v.invariant == "I3" and v.subject == "O-REFUND" and "neither" in v.message for v in violations)


def test_a_paid_order_parked_in_manual_review_is_not_a_money_violation() -> None:
    obs = clean_world()
    obs.bill_rows = [r for r in obs.bill_rows if r.trade_state != "REFUND"]
    obs.refunds = {"O-REFUND-R1": Refund("O-REFUND-R1", "O-REFUND", "ABNORMAL", 5_000, mchid=SHOP_A.mchid)}
    trade(obs, "O-REFUND", "SUCCESS")
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
    obs.cards[CARD] = dataclasses.replace(obs.cards[CARD], balance_fen=95_000)
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
    trade(obs, "O-CLOSED", "NOTPAY")
    obs.pre_recharges["O-CLOSED"] = PreRecharge("O-CLOSED", CARD, "RECHARGING", 20_000, 2_000, 22_000,
                                                merchant_id=A)
    assert found(obs) == {("I5", "O-CLOSED")}


def test_a_closed_order_still_payable_at_wechat_breaks_i3() -> None:
    obs = clean_world()
    trade(obs, "O-CLOSED", "NOTPAY")
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


# --------------------------------------------------------------------------- between merchants


def test_a_credit_journaled_on_another_merchants_card_breaks_m1() -> None:
    obs = clean_world()
    set_journal(obs, [*CLEAN_JOURNAL, ("RECHARGE_PRINCIPAL", 30_000, "O-B-CREDIT"),
                      ("RECHARGE_BONUS", 3_000, "O-B-CREDIT")])
    obs.journals[CARD_B] = []
    obs.cards[CARD_B] = dataclasses.replace(obs.cards[CARD_B], balance_fen=0)
    result = check(obs)
    messages = [v.message for v in result.violations if (v.invariant, v.subject) == ("M1", "O-B-CREDIT")]
    assert any(f"on card {CARD} of merchant {A}" in m for m in messages)
    assert {("M4", A), ("M4", B)} <= {(v.invariant, v.subject) for v in result.violations}


def test_a_pre_recharge_recorded_under_another_merchant_breaks_m1() -> None:
    obs = clean_world()
    pre = obs.pre_recharges["O-B-CREDIT"]
    obs.pre_recharges["O-B-CREDIT"] = dataclasses.replace(pre, merchant_id=A)
    assert found(obs) == {("M1", "O-B-CREDIT")}


def test_a_pre_recharge_on_another_merchants_card_breaks_m1() -> None:
    obs = clean_world()
    pre = obs.pre_recharges["O-B-CREDIT"]
    obs.pre_recharges["O-B-CREDIT"] = dataclasses.replace(pre, card_no=CARD)
    assert found(obs) == {("M1", "O-B-CREDIT")}


def test_an_order_the_recharge_center_files_under_another_merchant_breaks_m1() -> None:
    obs = clean_world()
    obs.driver.merchants["O-B-CREDIT"] = A  # the driver created it as SHOP_A
    violations = check(obs).violations
    assert any(v.invariant == "M1" and v.subject == "O-B-CREDIT" and f"created as merchant {A}" in v.message
               for v in violations)


def test_an_order_for_another_merchants_card_breaks_m1() -> None:
    obs = clean_world()
    obs.orders = [
        dataclasses.replace(o, card_no=CARD_B) if o.order_no == "O-CLOSED" else o for o in obs.orders
    ]
    obs.pre_recharges["O-CLOSED"] = dataclasses.replace(obs.pre_recharges["O-CLOSED"], card_no=CARD_B)
    assert found(obs) == {("M1", "O-CLOSED")}


def test_a_card_held_by_another_merchant_than_it_was_opened_for_breaks_m1() -> None:
    obs = clean_world()
    obs.cards[CARD_B] = dataclasses.replace(obs.cards[CARD_B], merchant_id=A)
    assert ("M1", CARD_B) in found(obs)


def test_orders_of_no_known_merchant_cannot_pass() -> None:
    obs = clean_world()
    obs.merchants = {}
    violations = found(obs)
    assert {("M1", o.order_no) for o in obs.orders} <= violations


def test_a_refund_booked_under_another_merchants_account_breaks_m2() -> None:
    obs = clean_world()
    obs.bill_rows = [
        dataclasses.replace(r, mchid=SHOP_B.mchid, bill_of=B) if r.trade_state == "REFUND" else r
        for r in obs.bill_rows
    ]
    obs.refunds["O-REFUND-R1"] = dataclasses.replace(obs.refunds["O-REFUND-R1"], mchid=SHOP_B.mchid)
    # The totals over everyone still add up; SHOP_A's own account is 5000 fen short.
    assert found(obs) == {("M2", "O-REFUND"), ("M4", A)}


def test_a_refund_in_another_merchants_bill_only_breaks_m2() -> None:
    obs = clean_world()
    row, _ = refund_of("O-REFUND", 5_000)
    obs.bill_rows.append(dataclasses.replace(row, out_refund_no="O-REFUND-R2", mchid=SHOP_B.mchid, bill_of=B,
                                             refund_status="PROCESSING"))
    assert ("M2", "O-REFUND") in found(obs)


def test_a_trade_held_under_another_merchants_account_breaks_m2() -> None:
    obs = clean_world()
    obs.trades["O-CREDIT"] = dataclasses.replace(obs.trades["O-CREDIT"], mchid=SHOP_B.mchid)
    assert found(obs) == {("M2", "O-CREDIT")}


def test_reading_an_order_as_another_merchant_must_answer_not_found() -> None:
    for answer in ("FOUND", "PERMISSION_DENIED"):
        obs = clean_world()
        obs.cross_reads.append(CrossRead("RechargeCenter.GetRechargeOrder", "O-CREDIT", A, B, answer))
        violations = check(obs).violations
        assert {(v.invariant, v.subject) for v in violations} == {("M3", "O-CREDIT")}
        assert answer in violations[0].message


def test_a_list_as_one_merchant_showing_another_merchants_order_breaks_m3() -> None:
    obs = clean_world()
    obs.listings[B].append("O-CREDIT")
    assert found(obs) == {("M3", "O-CREDIT")}
    obs = clean_world()
    obs.anomaly_listings[B].append("O-CREDIT")
    assert found(obs) == {("M3", "O-CREDIT")}


def test_a_trade_bill_showing_another_merchants_rows_breaks_m3() -> None:
    obs = clean_world()
    leaked = next(r for r in obs.bill_rows if r.out_trade_no == "O-CREDIT")
    obs.bill_rows.append(dataclasses.replace(leaked, bill_of=B))
    assert found(obs) == {("M3", "O-CREDIT")}


def test_one_merchant_short_while_the_totals_over_all_agree_breaks_m4() -> None:
    obs = clean_world()
    # SHOP_B's payment booked to SHOP_A's account: everyone's totals still add up.
    obs.bill_rows = [
        dataclasses.replace(r, mchid=SHOP_A.mchid, bill_of=A) if r.out_trade_no == "O-B-CREDIT" else r
        for r in obs.bill_rows
    ]
    violations = found(obs)
    assert ("I3", "*") not in violations
    assert ("M4", B) in violations
    assert ("M2", "O-B-CREDIT") in violations


def test_money_on_a_merchants_card_that_none_of_its_orders_explains_breaks_m4() -> None:
    obs = clean_world()
    ghost = JournalEntry(6, CARD_B, "RECHARGE_BONUS", 1_000, 34_000, "O-GHOST")
    obs.journals[CARD_B] = [*obs.journals[CARD_B], ghost]
    obs.cards[CARD_B] = dataclasses.replace(obs.cards[CARD_B], balance_fen=34_000)
    assert found(obs) == {("M4", B)}


def test_a_spend_made_as_one_merchant_on_another_merchants_card_breaks_m4() -> None:
    obs = clean_world()
    spent = JournalEntry(6, CARD_B, "CONSUME", -500, 32_500, "spend-x")
    obs.journals[CARD_B] = [*obs.journals[CARD_B], spent]
    obs.cards[CARD_B] = dataclasses.replace(obs.cards[CARD_B], balance_fen=32_500)
    obs.driver.spends.append(Spend("spend-x", CARD_B, 500, "done", merchant_id=A))
    assert found(obs) == {("M4", B)}


def test_a_void_tombstone_naming_no_merchant_breaks_m3_only() -> None:
    obs = clean_world()
    # O-CLOSED's pre-recharge never got an answer; the void reached the card system first (so it
    # refused the late pre-recharge), without naming the merchant.
    obs.orders = [
        dataclasses.replace(o, bonus_fen=0, credit_amount_fen=20_000) if o.order_no == "O-CLOSED" else o
        for o in obs.orders
    ]
    obs.pre_recharges["O-CLOSED"] = PreRecharge("O-CLOSED", "", "VOIDED", tombstone=True)
    assert found(obs) == {("M3", "O-CLOSED")}
    obs.pre_recharges["O-CLOSED"] = PreRecharge("O-CLOSED", "", "VOIDED", tombstone=True, merchant_id=A)
    assert found(obs) == set()


# --------------------------------------------------------------------------- I7: one actor per order


def on(node: str, at: float, event: TimelineEvent) -> tuple[str, float, TimelineEvent]:
    return node, at, event


def sent(method: str) -> TimelineEvent:
    return call(0, method, outcome="sent")


def story(*rows: tuple[str, float, TimelineEvent]) -> list[TimelineEvent]:
    """Rows in the order the database numbered them, each stamped with its replica and time."""
    return [dataclasses.replace(e, seq=i, node=node, at=at) for i, (node, at, e) in enumerate(rows, 1)]


def refund_story(
    confirm: tuple[str, float, float | None] = ("r2", 2.0, 2.4),
    void: tuple[str, float, float] = ("r1", 3.0, 3.2),
    refund: tuple[str, float, float] = ("r2", 4.0, 4.1),
) -> list[TimelineEvent]:
    """O-REFUND from create to refund: r1 creates it; each later call by (node, sent at, answered
    at; None: never answered), in that order in the database."""
    chain = transitions("CREATED", "AWAITING_PAYMENT", "PAID", "REFUNDING", "REFUNDED")
    moved = {e.to_status: e for e in chain}
    c_node, c_sent, c_done = confirm
    v_node, v_sent, v_done = void
    r_node, r_sent, r_done = refund
    rows = [
        on("r1", 1.0, moved["CREATED"]),
        on("r1", 1.0, sent("PreRecharge")),
        on("r1", 1.1, call(0, "PreRecharge")),
        on("r1", 1.2, sent("CreatePrepay")),
        on("r1", 1.3, call(0, "CreatePrepay")),
        on("r1", 1.3, moved["AWAITING_PAYMENT"]),
        on(c_node, 1.9, moved["PAID"]),
        on(c_node, c_sent, sent("ConfirmRecharge")),
    ]
    if c_done is not None:
        rows.append(on(c_node, c_done, call(0, "ConfirmRecharge", outcome="refused", detail="CARD_FROZEN")))
    rows += [
        on(v_node, v_sent, sent("VoidRecharge")),
        on(v_node, v_done, call(0, "VoidRecharge", detail="VOIDED")),
        on(v_node, v_done, TimelineEvent(0, "transition", from_status="PAID", to_status="REFUNDING")),
        on(r_node, r_sent, sent("CreateRefund")),
        on(r_node, r_done, call(0, "CreateRefund", detail="PROCESSING")),
        on(r_node, 5.0, moved["REFUNDED"]),
    ]
    return story(*rows)


def i7(obs: Observation) -> list[str]:
    return [v.message for v in check(obs).violations if v.invariant == "I7"]


def test_calls_handed_from_one_replica_to_another_after_the_answer_keep_one_actor_per_order() -> None:
    obs = clean_world()
    obs.timelines["O-REFUND"] = refund_story()  # r1 creates, r2 confirms, r1 voids, r2 refunds
    result = check(obs)
    assert result.violations == []
    one_actor = result.summary["one_actor"]
    assert one_actor["mutating_calls"] == 5
    assert one_actor["nodes"] == ["r1", "r2"]
    assert one_actor["orders_acted_on_by_several_nodes"] == 1


def test_a_hand_off_at_the_very_moment_of_the_answer_is_not_an_overlap() -> None:
    obs = clean_world()
    obs.timelines["O-REFUND"] = refund_story(confirm=("r2", 2.0, 3.0), void=("r1", 3.0, 3.2))
    assert i7(obs) == []


def test_a_void_sent_by_one_replica_while_another_replica_s_confirm_is_out_breaks_i7() -> None:
    obs = clean_world()
    # r1's sentinel voids while r2's confirm (sent 2.0) has not answered yet (2.4).
    obs.timelines["O-REFUND"] = refund_story(void=("r1", 2.2, 2.5))
    assert found(obs) == {("I7", "O-REFUND")}
    [message] = i7(obs)
    assert "ConfirmRecharge by r2" in message and "VoidRecharge by r1" in message
    assert "(200 ms)" in message


def test_overlapping_refunds_of_two_replicas_break_i7_whatever_the_order_of_their_rows() -> None:
    obs = clean_world()
    timeline = refund_story()
    # r1 sends the same refund while r2's is out; its rows sit after r2's in the database.
    timeline += story(on("r1", 4.05, sent("CreateRefund")), on("r1", 4.3, call(0, "CreateRefund")))
    obs.timelines["O-REFUND"] = [dataclasses.replace(e, seq=i) for i, e in enumerate(timeline, 1)]
    assert found(obs) == {("I7", "O-REFUND")}


def test_a_call_left_unanswered_by_a_killed_replica_ends_at_the_kill() -> None:
    obs = clean_world()
    # r2 died with its confirm out (no answer on record); r1's sentinel takes the order over later.
    obs.timelines["O-REFUND"] = refund_story(confirm=("r2", 2.0, None), void=("r1", 8.0, 8.1),
                                             refund=("r1", 8.2, 8.3))
    obs.kills = {"r2": [2.5]}
    assert i7(obs) == []
    assert check(obs).summary["one_actor"]["calls_cut_by_a_kill"] == 1


def test_a_killed_replica_s_call_is_out_until_the_kill() -> None:
    obs = clean_world()
    obs.timelines["O-REFUND"] = refund_story(confirm=("r2", 2.0, None), void=("r1", 3.0, 3.1),
                                             refund=("r1", 8.2, 8.3))
    obs.kills = {"r2": [1.0, 3.5]}  # killed once before the call (no matter), then with it out
    assert found(obs) == {("I7", "O-REFUND")}
    assert "killed" in i7(obs)[0]


def test_a_call_never_answered_by_a_replica_that_stayed_up_is_out_for_good() -> None:
    obs = clean_world()
    obs.timelines["O-REFUND"] = refund_story(confirm=("r2", 2.0, None), void=("r1", 30.0, 30.1),
                                             refund=("r1", 30.2, 30.3))
    assert found(obs) == {("I7", "O-REFUND")}
    messages = i7(obs)  # the open confirm overlaps r1's void and r1's refund
    assert len(messages) == 2 and all("ConfirmRecharge by r2" in m and "unanswered" in m for m in messages)


def test_a_second_sent_of_the_same_call_means_the_first_went_unanswered() -> None:
    obs = clean_world()
    # r2 sent the confirm, was killed, came back (same name) and sent it again, answered; r1 then
    # voided. The first sent ends at the kill, not at the restarted process's answer.
    timeline = refund_story(confirm=("r2", 2.0, None), void=("r1", 9.0, 9.1), refund=("r1", 9.2, 9.3))
    at = next(i for i, e in enumerate(timeline) if e.method.endswith("VoidRecharge"))
    answer = call(0, "ConfirmRecharge", "refused")
    retry = story(on("r2", 6.0, sent("ConfirmRecharge")), on("r2", 6.2, answer))
    timeline = timeline[:at] + retry + timeline[at:]
    obs.timelines["O-REFUND"] = [dataclasses.replace(e, seq=i) for i, e in enumerate(timeline, 1)]
    obs.kills = {"r2": [2.3]}
    assert i7(obs) == []


def test_one_replica_s_own_calls_and_reads_are_not_i7_s_business() -> None:
    obs = clean_world()
    timeline = refund_story(void=("r2", 2.2, 2.5))  # r2 voids while its own confirm is out
    # r1 reads the order at WeChat and the card system meanwhile: reads change nothing.
    timeline += story(on("r1", 2.1, sent("GetRecharge")), on("r1", 2.3, call(0, "QueryOrder")),
                      on("r1", 2.35, call(0, "GetRecharge")))
    obs.timelines["O-REFUND"] = [dataclasses.replace(e, seq=i) for i, e in enumerate(timeline, 1)]
    assert i7(obs) == []


def test_a_call_announced_but_never_made_is_no_call() -> None:
    obs = clean_world()
    # r1 announced the confirm with the payment, then found it had lost the order's lease and
    # never made the call (its not_sent row comes last); r2 took the order over meanwhile.
    timeline = refund_story(confirm=("r2", 2.0, 2.4))
    paid = next(i for i, e in enumerate(timeline) if e.to_status == "PAID")
    announced = story(on("r1", 1.5, sent("ConfirmRecharge")))
    never = story(on("r1", 2.1, call(0, "ConfirmRecharge", outcome="not_sent")))
    timeline = timeline[: paid + 1] + announced + timeline[paid + 1 :] + never
    obs.timelines["O-REFUND"] = [dataclasses.replace(e, seq=i) for i, e in enumerate(timeline, 1)]
    assert i7(obs) == []
    # Had it been answered (the call made), the two confirms would have been out at once.
    obs.timelines["O-REFUND"][-1] = dataclasses.replace(obs.timelines["O-REFUND"][-1], outcome="unknown")
    assert found(obs) == {("I7", "O-REFUND")}


def interleaved(void_at: float) -> list[TimelineEvent]:
    """r2's credit announced the confirm with the payment (1.7) but found r2's own sentinel holding
    the order: the sentinel sent its confirm (2.1), the credit said not_sent (2.2), the sentinel's
    answer came (2.4). Then r1 voids at ``void_at`` and refunds."""
    timeline = refund_story(confirm=("r2", 2.1, None), void=("r1", void_at, void_at + 0.1),
                            refund=("r1", void_at + 0.2, void_at + 0.3))
    confirm = next(i for i, e in enumerate(timeline) if e.method.endswith("ConfirmRecharge"))
    sentinel = dataclasses.replace(timeline[confirm], actor="sentinel")
    rows = story(
        on("r2", 1.7, dataclasses.replace(sent("ConfirmRecharge"), actor="system")),
        on("r2", 2.1, sentinel),
        on("r2", 2.2, dataclasses.replace(call(0, "ConfirmRecharge", outcome="not_sent"), actor="system")),
        on("r2", 2.4, dataclasses.replace(call(0, "ConfirmRecharge", outcome="refused"), actor="sentinel")),
    )
    timeline = timeline[:confirm] + rows + timeline[confirm + 1 :]
    return [dataclasses.replace(e, seq=i) for i, e in enumerate(timeline, 1)]


def test_two_flows_of_one_replica_interleaving_on_one_call_are_told_apart_by_actor() -> None:
    obs = clean_world()
    obs.timelines["O-REFUND"] = interleaved(void_at=2.5)  # after the sentinel's answer
    assert i7(obs) == []
    one_actor = check(obs).summary["one_actor"]
    assert one_actor["calls_never_answered"] == 0 and one_actor["calls_announced_never_made"] == 1
    obs.timelines["O-REFUND"] = interleaved(void_at=2.3)  # while the sentinel's confirm is out
    [message] = i7(obs)
    assert "ConfirmRecharge by r2" in message and "refused" in message
