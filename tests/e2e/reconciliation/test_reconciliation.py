"""Against the three running services: a day of top-ups and a refund reconciles with no
difference; each planted bill or journal fault is reported in its category, naming the order."""

from __future__ import annotations

import asyncio
import csv
import io

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from scripts.reconcile import reconcile_day
from scripts.stack import STACK_OPERATOR
from tests.e2e.reconciliation.conftest import Reconciling, today

S = recharge_pb2
K = faults_pb2
BILL = "/wechatpay.v1.PaymentGateway/DownloadTradeBill"
EXPORT = "/card.v1.CardAdmin/ExportJournal"


async def top_up(recon: Reconciling, pay_fen: int = 30_000) -> recharge_pb2.RechargeOrder:
    card_no = await recon.new_card()
    order = await recon.create(card_no, pay_fen)
    await recon.pay(order.order_no)
    return await recon.wait_for(order.order_no, lambda o: o.status == S.ORDER_STATUS_CREDITED)


async def refunded_top_up(recon: Reconciling) -> recharge_pb2.RechargeOrder:
    """Paid for a card frozen meanwhile: the card refuses the credit, the order is voided, refunded."""
    card_no = await recon.new_card()
    order = await recon.create(card_no, 20_000)
    await recon.admin.FreezeCard(card_pb2.FreezeCardRequest(card_no=card_no), timeout=5)
    await recon.pay(order.order_no)
    return await recon.wait_for(order.order_no, lambda o: o.status == S.ORDER_STATUS_REFUNDED, within=30)


async def first_bill_payment(recon: Reconciling) -> str:
    """The order number of the first payment line of today's bill (what the bill faults alter)."""
    request = wechatpay_pb2.DownloadTradeBillRequest(bill_date=today(), merchant=recon.merchant.wechat_ref())
    bill = await recon.gateway.DownloadTradeBill(request, timeout=10)
    return next(row.out_trade_no for row in bill.rows if row.trade_state == "SUCCESS")


async def plant(recon: Reconciling, method: str, kind: int) -> None:
    rule = faults_pb2.FaultRule(method=method, kind=kind)  # type: ignore[arg-type]
    plan = faults_pb2.FaultPlan(seed=1, rules=[rule])
    stub = recon.card_faults if method == EXPORT else recon.wechat_faults
    await stub.SetFaults(plan, timeout=5)


async def test_a_day_of_top_ups_and_a_refund_reconciles_with_no_difference(recon: Reconciling) -> None:
    await top_up(recon)
    await top_up(recon, 100_000)
    await refunded_top_up(recon)
    run = await recon.settled_run()
    assert (run.status, run.differences, run.pending) == ("COMPLETED", 0, 0)
    assert run.orders >= 3 and run.bill_rows >= 4  # three payments and a refund, at least
    assert run.journal_entries >= 4  # principal and bonus of both credits
    assert await recon.items() == []
    # A re-run replaces the run: still one run of the day for the merchant, still clean.
    again = await recon.reconcile()
    answer = await recon.ops.GetReconciliation(
        S.GetReconciliationRequest(date=today(), merchant_id=recon.merchant_id), timeout=10
    )
    assert [r.merchant_id for r in answer.runs] == [recon.merchant_id]
    assert again.differences == 0 and answer.runs[0].differences == 0
    assert answer.runs[0].actor == STACK_OPERATOR  # the operator token's subject
    # --reconcile-enabled: the daily job was scheduled at start.
    assert "reconcile_scheduled" in recon.stack.recharge.log_path.read_text()


async def test_a_payment_missing_from_the_bill_is_an_order_we_think_paid_that_the_bill_lacks(
    recon: Reconciling,
) -> None:
    await top_up(recon)
    await recon.settled_run()
    missing = await first_bill_payment(recon)
    await plant(recon, BILL, K.FAULT_KIND_BILL_MISSING_LINE)
    run = await recon.reconcile()
    assert run.differences == 1 and run.counts["PAID_NOT_IN_BILL"] == 1
    (item,) = await recon.items("", "PAID_NOT_IN_BILL")
    assert (item.order_no, item.wechat, item.wechat_fen) == (missing, "not in bill", 0)
    assert item.ours.startswith("CREDITED") and item.card_fen > 0


async def test_a_changed_amount_in_the_bill_is_an_amount_mismatch_of_the_pay(recon: Reconciling) -> None:
    await top_up(recon)
    await recon.settled_run()
    changed = await first_bill_payment(recon)
    await plant(recon, BILL, K.FAULT_KIND_BILL_CHANGED_AMOUNT)
    run = await recon.reconcile()
    assert run.differences == 1
    (item,) = await recon.items("", "AMOUNT_MISMATCH")
    assert item.order_no == changed and item.detail.startswith("pay:")
    assert item.wechat_fen == item.ours_fen + 1


async def test_a_payment_nobody_ordered_is_a_bill_line_without_an_order(recon: Reconciling) -> None:
    await top_up(recon)
    await recon.settled_run()
    await plant(recon, BILL, K.FAULT_KIND_BILL_EXTRA_PAYMENT)
    run = await recon.reconcile()
    assert run.differences == 1
    (item,) = await recon.items("", "BILL_WITHOUT_ORDER")
    assert item.order_no.startswith("EXTRA") and item.ours == "no order" and item.wechat_fen == 1


async def test_an_extra_journal_entry_is_a_credit_without_payment(recon: Reconciling) -> None:
    await top_up(recon)
    await recon.settled_run()
    await plant(recon, EXPORT, K.FAULT_KIND_JOURNAL_EXTRA_ENTRY)
    run = await recon.reconcile()
    # The next day's export (read for credits landing after midnight) gains one too; only the
    # day's own is reported.
    assert run.differences == 1
    (item,) = await recon.items()
    assert item.category == "CREDITED_WITHOUT_PAYMENT" and item.order_no.startswith("EXTRA-CREDIT-")
    assert (item.wechat_fen, item.ours_fen, item.card_fen) == (0, 0, 1)


async def test_the_cli_runs_shows_and_exports_a_day_and_each_item_leads_to_its_orders_timeline(
    recon: Reconciling,
) -> None:
    await top_up(recon)
    await recon.settled_run()
    missing = await first_bill_payment(recon)
    await plant(recon, BILL, K.FAULT_KIND_BILL_MISSING_LINE)
    ran = await recon.cli("reconcile", "run", today(), "--merchant-id", recon.merchant_id)
    assert ran.returncode == 0, ran.stderr
    header, _rule, line, *_ = ran.stdout.splitlines()
    assert header.split()[:5] == ["DATE", "MERCHANT", "STATUS", "DIFFERENCES", "PENDING"]
    assert line.split()[:5] == [today(), recon.merchant_id, "COMPLETED", "1", "0"]

    shown = await recon.cli("reconcile", "show", today(), "--merchant-id", recon.merchant_id)
    assert shown.returncode == 0, shown.stderr
    (row,) = [r for r in shown.stdout.splitlines() if r.startswith(missing)]
    assert row.split()[1:3] == [recon.merchant_id, "PAID_NOT_IN_BILL"]

    exported = await recon.cli("reconcile", "show", today(), "--merchant-id", recon.merchant_id, "--csv")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["order_no"], r["category"], r["wechat"]) for r in rows] == [
        (missing, "PAID_NOT_IN_BILL", "not in bill")
    ]
    timeline = await recon.cli("timeline", rows[0]["order_no"])
    assert timeline.returncode == 0, timeline.stderr
    assert "CREDITED" in timeline.stdout

    bad = await recon.cli("reconcile", "show", "30-11-2026")
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr


async def test_a_script_reconciles_a_day_through_the_recharge_centers_address_and_a_token(
    recon: Reconciling,
) -> None:
    await top_up(recon)
    stack = recon.stack
    token = stack.client_auth().token
    report = await asyncio.to_thread(
        reconcile_day, stack.recharge.address, token, today(), merchant_id=recon.merchant_id, interval=0.5
    )
    assert report.settled and report.differences == 0 and report.items == []
    await plant(recon, BILL, K.FAULT_KIND_BILL_EXTRA_PAYMENT)
    report = await asyncio.to_thread(
        reconcile_day, stack.recharge.address, token, today(), merchant_id=recon.merchant_id
    )
    assert report.differences == 1
    assert [i.category for i in report.items] == ["BILL_WITHOUT_ORDER"]
