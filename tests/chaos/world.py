"""A clean, hand-built observation of a quiet system: the base every planted bug starts from.

Card C1 holds two top-ups: O-CREDIT (pay 100000, bonus 20000, credited, then 30000 spent) and
O-REFUND (pay 5000, confirm refused, voided, refunded in full). O-CLOSED was never paid (closed at
WeChat, pre-recharge voided); O-REJECTED was refused at pre-recharge.
"""

from __future__ import annotations

from itertools import pairwise

from scripts.chaos.invariants import (
    BillRow,
    Card,
    DriverLog,
    JournalEntry,
    Observation,
    Order,
    PreRecharge,
    Refund,
    Spend,
    TimelineEvent,
    Trade,
)

CARD = "8800000000000001"


def transitions(*states: str) -> list[TimelineEvent]:
    chain = ["UNSPECIFIED", *states]
    return [
        TimelineEvent(seq=i + 1, kind="transition", from_status=a, to_status=b)
        for i, (a, b) in enumerate(pairwise(chain))
    ]


def call(seq: int, method: str, outcome: str = "done", detail: str = "") -> TimelineEvent:
    return TimelineEvent(seq=seq, kind="remote_call", method=f"/x/{method}", outcome=outcome, detail=detail)


def credited_timeline() -> list[TimelineEvent]:
    events = transitions("CREATED", "AWAITING_PAYMENT", "PAID", "CREDITED")
    return [*events, call(10, "ConfirmRecharge", detail="SUCCEEDED")]


def refunded_timeline() -> list[TimelineEvent]:
    events = transitions("CREATED", "AWAITING_PAYMENT", "PAID", "REFUNDING", "REFUNDED")
    # Re-sequence so the calls sit between PAID and REFUNDING.
    by_state = {e.to_status: e for e in events}
    return [
        by_state["CREATED"],
        by_state["AWAITING_PAYMENT"],
        by_state["PAID"],
        call(4, "ConfirmRecharge", outcome="refused", detail="CARD_FROZEN"),
        call(5, "VoidRecharge", detail="VOIDED"),
        TimelineEvent(seq=6, kind="transition", from_status="PAID", to_status="REFUNDING"),
        call(7, "CreateRefund", detail="PROCESSING"),
        TimelineEvent(seq=8, kind="transition", from_status="REFUNDING", to_status="REFUNDED"),
    ]


def clean_world() -> Observation:
    orders = [
        Order("O-CREDIT", CARD, "CREDITED", 100_000, 20_000, 120_000, transaction_id="T1"),
        Order("O-REFUND", CARD, "REFUNDED", 5_000, 0, 5_000, out_refund_no="O-REFUND-R1",
              transaction_id="T2", failure_reason="card frozen"),
        Order("O-CLOSED", CARD, "CLOSED", 20_000, 2_000, 22_000, failure_reason="not paid"),
        Order("O-REJECTED", CARD, "REJECTED", 50, 0, 50, failure_reason="AMOUNT_BELOW_MINIMUM"),
    ]
    timelines = {
        "O-CREDIT": credited_timeline(),
        "O-REFUND": refunded_timeline(),
        "O-CLOSED": transitions("CREATED", "AWAITING_PAYMENT", "CLOSED"),
        "O-REJECTED": transitions("CREATED", "REJECTED"),
    }
    pre = {
        "O-CREDIT": PreRecharge("O-CREDIT", CARD, "SUCCEEDED", 100_000, 20_000, 120_000),
        "O-REFUND": PreRecharge("O-REFUND", CARD, "VOIDED", 5_000, 0, 5_000),
        "O-CLOSED": PreRecharge("O-CLOSED", CARD, "VOIDED", 20_000, 2_000, 22_000),
        "O-REJECTED": PreRecharge("O-REJECTED", CARD, "MISSING"),
    }
    journal = [
        JournalEntry(1, CARD, "RECHARGE_PRINCIPAL", 100_000, 100_000, "O-CREDIT"),
        JournalEntry(2, CARD, "RECHARGE_BONUS", 20_000, 120_000, "O-CREDIT"),
        JournalEntry(3, CARD, "CONSUME", -30_000, 90_000, "spend-1"),
    ]
    bill = [
        BillRow("O-CREDIT", "SUCCESS", 100_000, transaction_id="T1"),
        BillRow("O-REFUND", "SUCCESS", 5_000, transaction_id="T2"),
        BillRow("O-REFUND", "REFUND", 5_000, out_refund_no="O-REFUND-R1", refund_fen=5_000,
                refund_status="SUCCESS"),
    ]
    trades = {
        "O-CREDIT": Trade("O-CREDIT", "SUCCESS", 100_000),
        "O-REFUND": Trade("O-REFUND", "REFUND", 5_000, refunded_fen=5_000),
        "O-CLOSED": Trade("O-CLOSED", "CLOSED", 20_000),
        "O-REJECTED": Trade("O-REJECTED", "NOT_FOUND"),
    }
    refunds = {"O-REFUND-R1": Refund("O-REFUND-R1", "O-REFUND", "SUCCESS", 5_000)}
    driver = DriverLog(
        created={"k1": "O-CREDIT", "k2": "O-REFUND", "k3": "O-CLOSED"},
        payments={"O-CREDIT": "done", "O-REFUND": "done"},
        spends=[Spend("spend-1", CARD, 30_000, "done")],
    )
    return Observation(
        orders=orders,
        timelines=timelines,
        pre_recharges=pre,
        cards={CARD: Card(CARD, "ACTIVE", 90_000)},
        journals={CARD: journal},
        bill_rows=bill,
        trades=trades,
        refunds=refunds,
        driver=driver,
    )
