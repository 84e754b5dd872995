"""The Reconciler over a real SQLite database with scripted remote sides: a run is stored with its
items, a re-run replaces them, a side that cannot be read makes the run FAILED, items page with
MAC'd tokens, and the metrics hook keeps the last counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from rc_common import metrics
from rc_common.db import Database
from rc_common.errors import InvalidArgument
from recharge_service.adapters.orm import recharge_orders
from recharge_service.adapters.reconciliation import SqlReconciliationStore
from recharge_service.domain.merchant import WechatAccount
from recharge_service.domain.reconciliation import BillPayment, CardCredit
from recharge_service.entrypoints.reconcile_job import ReconcileJob
from recharge_service.service_layer.reconcile import (
    COMPLETED,
    FAILED,
    Bill,
    Reconciler,
    SideUnavailable,
    previous_business_day,
)
from recharge_service.service_layer.reconcile_metrics import last_counts
from tests.integration.recharge_service.fakes import MERCHANT, MemoryMerchants

DAY = "2026-11-29"
PAID_AT = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)  # 10:00 +08:00 on DAY
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


@dataclass
class ScriptedSides:
    payments: list[BillPayment] = field(default_factory=list)
    credits: list[CardCredit] = field(default_factory=list)
    bill_down: bool = False
    asked: list[tuple[str, str]] = field(default_factory=list)

    async def trade_bill(self, account: WechatAccount, day: str) -> Bill:
        self.asked.append(("bill", day))
        if self.bill_down:
            raise SideUnavailable("wechat bill", "UNAVAILABLE: simulated")
        return Bill(list(self.payments), [])

    async def card_credits(self, day: str, merchant_id: str) -> list[CardCredit]:
        self.asked.append(("journal", day))
        return list(self.credits) if day == DAY else []

    async def recharge_status(self, order_no: str, merchant_id: str) -> str:
        return "VOIDED"


async def add_order(db: Database, order_no: str, pay_fen: int = 1_000, status: str = "CREDITED") -> None:
    row: dict[str, Any] = {
        "order_no": order_no, "merchant_id": MERCHANT, "merchant_version": 1, "idempotency_key": order_no,
        "card_no": "8800000000000001", "channel": "POS", "status": status, "pay_amount_fen": pay_fen,
        "bonus_fen": 0, "credit_amount_fen": pay_fen, "rule_version": 1, "prepay_id": "",
        "transaction_id": "", "out_refund_no": "", "failure_reason": "", "payer_openid": "o-1",
        "created_at": PAID_AT, "updated_at": PAID_AT, "paid_at": PAID_AT,
        "expires_at": PAID_AT + timedelta(minutes=30), "version": 1, "attempts": 0, "last_error": "",
    }  # fmt: skip
    await db.write(lambda conn: conn.execute(sa.insert(recharge_orders), [row]))


def credited(order_no: str, fen: int = 1_000) -> CardCredit:
    return CardCredit(order_no, "RECHARGE_PRINCIPAL", fen, PAID_AT)


@pytest.fixture
def sides() -> ScriptedSides:
    return ScriptedSides()


@pytest.fixture
def reconciler(db: Database, sides: ScriptedSides) -> Reconciler:
    store = SqlReconciliationStore(db)
    return Reconciler(store, sides, MemoryMerchants.of(), timedelta(hours=1), lambda: NOW)


async def test_a_run_is_stored_with_its_items_and_a_re_run_replaces_them(
    db: Database, sides: ScriptedSides, reconciler: Reconciler
) -> None:
    for no in ("A1", "A2"):
        await add_order(db, no)
    sides.payments = [BillPayment("A1", 1_000, PAID_AT)]
    sides.credits = [credited("A1"), credited("A2")]
    (run,) = await reconciler.run(DAY, MERCHANT, "alice")
    assert (run.status, run.differences, run.orders, run.journal_entries, run.actor) == (
        COMPLETED, 1, 2, 2, "alice"
    )  # fmt: skip
    page = await reconciler.get(DAY, MERCHANT)
    assert [(s.item.order_no, s.item.category.value) for s in page.items] == [("A2", "PAID_NOT_IN_BILL")]
    assert last_counts()[(DAY, MERCHANT)]["PAID_NOT_IN_BILL"] == 1
    assert exported("PAID_NOT_IN_BILL") == 1  # rc_reconciliation_differences, for the alert
    # The next day's journal was read too (a credit may land after midnight).
    assert ("journal", "2026-11-30") in sides.asked

    sides.payments.append(BillPayment("A2", 1_000, PAID_AT))
    (again,) = await reconciler.run(DAY, MERCHANT, "bob")
    page = await reconciler.get(DAY, MERCHANT)
    assert (again.differences, page.items, [r.actor for r in page.runs]) == (0, [], ["bob"])
    assert last_counts()[(DAY, MERCHANT)]["PAID_NOT_IN_BILL"] == 0
    assert exported("PAID_NOT_IN_BILL") == 0  # settled: the alert clears
    assert exported("PENDING") is None  # not a difference: never exported


def exported(category: str) -> float | None:
    sample = metrics.metrics().registry.get_sample_value(
        "rc_reconciliation_differences", {"business_date": DAY, "category": category}
    )
    return None if sample is None else float(sample)


async def test_a_side_that_cannot_be_read_makes_the_run_failed_with_its_reason(
    db: Database, sides: ScriptedSides, reconciler: Reconciler
) -> None:
    await add_order(db, "A1")
    sides.bill_down = True
    (run,) = await reconciler.run(DAY, MERCHANT)
    assert run.status == FAILED and "wechat bill" in run.detail and run.differences == 0
    page = await reconciler.get(DAY, MERCHANT)
    assert [r.status for r in page.runs] == [FAILED] and page.items == []


async def test_items_page_with_tokens_bound_to_their_query(
    db: Database, sides: ScriptedSides, reconciler: Reconciler
) -> None:
    for no in ("B1", "B2", "B3"):
        await add_order(db, no)
    await reconciler.run(DAY, MERCHANT)
    seen: list[str] = []
    token = ""
    while True:
        page = await reconciler.get(DAY, MERCHANT, page_size=1, page_token=token)
        seen += [s.item.order_no for s in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["B1", "B2", "B3"]
    first = await reconciler.get(DAY, MERCHANT, page_size=1)
    with pytest.raises(InvalidArgument):
        await reconciler.get("2026-11-28", MERCHANT, page_size=1, page_token=first.next_page_token)
    with pytest.raises(InvalidArgument):
        await reconciler.get(DAY, MERCHANT, ["PENDING"], page_size=1, page_token=first.next_page_token)
    with pytest.raises(InvalidArgument):
        await reconciler.get(DAY, MERCHANT, ["NOT_A_CATEGORY"])
    only = await reconciler.get(DAY, MERCHANT, ["PENDING"])
    assert only.items == []


def test_the_daily_job_reconciles_the_previous_business_day_in_plus_eight() -> None:
    # 2026-11-30 01:30 +08:00 is still 2026-11-29 in UTC: the previous business day is the 29th.
    assert previous_business_day(datetime(2026, 11, 29, 17, 30, tzinfo=UTC)) == DAY
    assert previous_business_day(datetime(2026, 11, 29, 15, 30, tzinfo=UTC)) == "2026-11-28"


async def test_the_daily_job_stores_a_run_of_the_previous_day_for_every_merchant(
    db: Database, sides: ScriptedSides, reconciler: Reconciler
) -> None:
    await add_order(db, "J1")
    sides.payments = [BillPayment("J1", 1_000, PAID_AT)]
    sides.credits = [credited("J1")]
    await ReconcileJob(reconciler, 10, 0).tick()  # NOW is 2026-11-30 10:00 +08:00
    page = await reconciler.get(DAY, MERCHANT)
    assert [(r.merchant_id, r.status, r.actor, r.differences) for r in page.runs] == [
        (MERCHANT, COMPLETED, "scheduler", 0)
    ]
