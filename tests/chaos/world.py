"""A clean, hand-built observation of a quiet system: the base every planted bug starts from.

Two merchants: SHOP_A, paid directly (its own mchid), and SHOP_B, under the provider (its
sub_mchid). SHOP_A's card C1 holds two top-ups: O-CREDIT (pay 100000, bonus 20000, credited, then
30000 spent) and O-REFUND (pay 5000, confirm refused, voided, refunded in full). O-CLOSED was never
paid (closed at WeChat, pre-recharge voided); O-REJECTED was refused at pre-recharge. SHOP_B's card
holds O-B-CREDIT (pay 30000, bonus 3000 by SHOP_B's rule, credited). A sample of reads made as the
other merchant all answered NOT_FOUND.
"""

from __future__ import annotations

from itertools import pairwise

from scripts.chaos.invariants import (
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
)

CARD = "8800000000000001"
CARD_B = "8900000000000001"
SHOP_A = MerchantAccount("shop-a", "direct", "1900000701")
SHOP_B = MerchantAccount("shop-b", "partner", "1900000801")
A, B = SHOP_A.merchant_id, SHOP_B.merchant_id


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
        Order("O-CREDIT", CARD, "CREDITED", 100_000, 20_000, 120_000, transaction_id="T1", merchant_id=A),
        Order("O-REFUND", CARD, "REFUNDED", 5_000, 0, 5_000, out_refund_no="O-REFUND-R1",
              transaction_id="T2", failure_reason="card frozen", merchant_id=A),
        Order("O-CLOSED", CARD, "CLOSED", 20_000, 2_000, 22_000, failure_reason="not paid", merchant_id=A),
        Order("O-REJECTED", CARD, "REJECTED", 50, 0, 50, failure_reason="AMOUNT_BELOW_MINIMUM",
              merchant_id=A),
        Order("O-B-CREDIT", CARD_B, "CREDITED", 30_000, 3_000, 33_000, transaction_id="T3", merchant_id=B),
    ]
    timelines = {
        "O-CREDIT": credited_timeline(),
        "O-REFUND": refunded_timeline(),
        "O-CLOSED": transitions("CREATED", "AWAITING_PAYMENT", "CLOSED"),
        "O-REJECTED": transitions("CREATED", "REJECTED"),
        "O-B-CREDIT": credited_timeline(),
    }
    pre = {
        "O-CREDIT": PreRecharge("O-CREDIT", CARD, "SUCCEEDED", 100_000, 20_000, 120_000, merchant_id=A),
        "O-REFUND": PreRecharge("O-REFUND", CARD, "VOIDED", 5_000, 0, 5_000, merchant_id=A),
        "O-CLOSED": PreRecharge("O-CLOSED", CARD, "VOIDED", 20_000, 2_000, 22_000, merchant_id=A),
        "O-REJECTED": PreRecharge("O-REJECTED", CARD, "MISSING"),
        "O-B-CREDIT": PreRecharge("O-B-CREDIT", CARD_B, "SUCCEEDED", 30_000, 3_000, 33_000, merchant_id=B),
    }
    journal = [
        JournalEntry(1, CARD, "RECHARGE_PRINCIPAL", 100_000, 100_000, "O-CREDIT"),
        JournalEntry(2, CARD, "RECHARGE_BONUS", 20_000, 120_000, "O-CREDIT"),
        JournalEntry(3, CARD, "CONSUME", -30_000, 90_000, "spend-1"),
    ]
    journal_b = [
        JournalEntry(4, CARD_B, "RECHARGE_PRINCIPAL", 30_000, 30_000, "O-B-CREDIT"),
        JournalEntry(5, CARD_B, "RECHARGE_BONUS", 3_000, 33_000, "O-B-CREDIT"),
    ]
    a, b = SHOP_A.mchid, SHOP_B.mchid
    bill = [
        BillRow("O-CREDIT", "SUCCESS", 100_000, transaction_id="T1", mchid=a, bill_of=A),
        BillRow("O-REFUND", "SUCCESS", 5_000, transaction_id="T2", mchid=a, bill_of=A),
        BillRow("O-REFUND", "REFUND", 5_000, out_refund_no="O-REFUND-R1", refund_fen=5_000,
                refund_status="SUCCESS", mchid=a, bill_of=A),
        BillRow("O-B-CREDIT", "SUCCESS", 30_000, transaction_id="T3", mchid=b, bill_of=B),
    ]
    trades = {
        "O-CREDIT": Trade("O-CREDIT", "SUCCESS", 100_000, mchid=a),
        "O-REFUND": Trade("O-REFUND", "REFUND", 5_000, refunded_fen=5_000, mchid=a),
        "O-CLOSED": Trade("O-CLOSED", "CLOSED", 20_000, mchid=a),
        "O-REJECTED": Trade("O-REJECTED", "NOT_FOUND"),
        "O-B-CREDIT": Trade("O-B-CREDIT", "SUCCESS", 30_000, mchid=b),
    }
    refunds = {"O-REFUND-R1": Refund("O-REFUND-R1", "O-REFUND", "SUCCESS", 5_000, mchid=a)}
    driver = DriverLog(
        created={"k1": "O-CREDIT", "k2": "O-REFUND", "k3": "O-CLOSED", "k4": "O-B-CREDIT"},
        payments={"O-CREDIT": "done", "O-REFUND": "done", "O-B-CREDIT": "done"},
        spends=[Spend("spend-1", CARD, 30_000, "done", merchant_id=A)],
        merchants={"O-CREDIT": A, "O-REFUND": A, "O-CLOSED": A, "O-B-CREDIT": B},
        card_merchants={CARD: A, CARD_B: B},
    )
    cross_reads = [
        CrossRead(call, subject, owner, reader, "NOT_FOUND")
        for subject, owner, reader in (("O-CREDIT", A, B), ("O-B-CREDIT", B, A))
        for call in ("RechargeCenter.GetRechargeOrder", "CardSystem.GetRecharge", "PaymentGateway.QueryOrder")
    ] + [CrossRead("CardSystem.GetCard", CARD, A, B, "NOT_FOUND")]
    return Observation(
        orders=orders,
        timelines=timelines,
        pre_recharges=pre,
        cards={
            CARD: Card(CARD, "ACTIVE", 90_000, merchant_id=A),
            CARD_B: Card(CARD_B, "ACTIVE", 33_000, merchant_id=B),
        },
        journals={CARD: journal, CARD_B: journal_b},
        bill_rows=bill,
        trades=trades,
        refunds=refunds,
        driver=driver,
        merchants={A: SHOP_A, B: SHOP_B},
        listings={A: ["O-CREDIT", "O-REFUND", "O-CLOSED", "O-REJECTED"], B: ["O-B-CREDIT"]},
        anomaly_listings={A: [], B: []},
        cross_reads=cross_reads,
    )
