"""Against the running services, through the operator CLI (``python -m recharge_service.ops`` as a
subprocess): orders nobody can decide land in MANUAL_REVIEW with their reason, and an operator
resolves them only through the fenced calls — never a credit the card did not make, never a refund
without a void."""

from __future__ import annotations

import asyncio

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from tests.e2e.merchants import other_than
from tests.e2e.sentinel.conftest import CARD, GATEWAY, MAX_ATTEMPTS, Ops, rule

S = recharge_pb2
K = faults_pb2
REVIEW = S.ORDER_STATUS_MANUAL_REVIEW
TICKET = ("--reason", "ticket OPS-7: customer called")


async def anomalies_of(ops: Ops, merchant_id: str) -> list[str]:
    """The order numbers of every anomaly ListAnomalies shows for ``merchant_id``."""
    found: list[str] = []
    token = ""
    while True:
        page = await ops.ops.ListAnomalies(
            S.ListAnomaliesRequest(
                merchant_id=merchant_id, page=S.PageRequest(page_size=500, page_token=token)
            ),
            timeout=5,
        )
        found += [a.order.order_no for a in page.anomalies]
        assert {a.order.merchant_id for a in page.anomalies} <= {merchant_id}
        token = page.next_page_token
        if not token:
            return found


async def test_an_abnormal_refund_goes_to_review_and_no_operator_action_can_credit_or_refund_twice(
    ops: Ops,
) -> None:
    card_no = await ops.new_card()
    await ops.wechat_faults_set(rule(GATEWAY + "CreateRefund", K.FAULT_KIND_REFUND_ABNORMAL, times=1))
    order = await ops.create(card_no, 20_000)
    await ops.admin.FreezeCard(card_pb2.FreezeCardRequest(card_no=card_no), timeout=5)
    await ops.pay(order.order_no)
    await ops.until(order.order_no, REVIEW)

    listed = await ops.cli("anomalies", "--status", "manual-review")
    assert listed.returncode == 0, listed.stderr
    header, _rule, *rows = listed.stdout.splitlines()
    assert header.split()[:5] == ["ORDER_NO", "MERCHANT", "STATUS", "AGE", "ATTEMPTS"]
    (line,) = [r for r in rows if r.startswith(order.order_no)]
    assert line.split()[1] == ops.merchant_id and "MANUAL_REVIEW" in line and "ABNORMAL" in line
    only = await ops.cli("anomalies", "--merchant-id", other_than(ops.merchant).merchant_id)
    assert only.returncode == 0 and order.order_no not in only.stdout
    # Asked for one merchant's anomalies, the operator sees only that merchant's.
    assert order.order_no in await anomalies_of(ops, ops.merchant_id)
    assert order.order_no not in await anomalies_of(ops, other_than(ops.merchant).merchant_id)

    credit = await ops.cli("resolve", order.order_no, "--action", "confirm-credit", *TICKET)
    assert credit.returncode == 1 and "FAILED_PRECONDITION CARD_NOT_CREDITED" in credit.stderr
    refund = await ops.cli("resolve", order.order_no, "--action", "refund", *TICKET)
    assert refund.returncode == 1 and "REFUND_ABNORMAL" in refund.stderr
    retry = await ops.cli("resolve", order.order_no, "--action", "retry-now", *TICKET)
    assert retry.returncode == 0 and "ABNORMAL at WeChat" in retry.stdout and "MANUAL_REVIEW" in retry.stdout
    missing = await ops.cli("resolve", order.order_no, "--action", "refund", "--reason", " ")
    assert missing.returncode == 1 and "INVALID_ARGUMENT" in missing.stderr and "reason" in missing.stderr

    shown = await ops.cli("timeline", order.order_no)
    assert shown.returncode == 0 and "operator_action" in shown.stdout and "ticket OPS-7" in shown.stdout
    actions = [e for e in await ops.timeline(order.order_no) if e.kind == "operator_action"]
    assert [(e.method, e.outcome) for e in actions] == [
        ("CONFIRM_CREDIT", "requested"),
        ("CONFIRM_CREDIT", "refused"),
        ("REFUND", "requested"),
        ("REFUND", "refused"),
        ("RETRY_NOW", "requested"),
        ("RETRY_NOW", "done"),
    ]
    assert {e.actor for e in actions} == {"alice"}
    assert (await ops.order(order.order_no)).status == REVIEW
    refund_record = await ops.refund_of(order.order_no)
    assert refund_record is not None and refund_record.status == wechatpay_pb2.REFUND_STATUS_ABNORMAL
    await ops.money_holds(card_no, order)


async def test_orders_undecided_after_max_attempts_are_resolved_by_operators_through_the_fences(
    ops: Ops,
) -> None:
    landed_card, never_card, refund_card = [await ops.new_card() for _ in range(3)]
    silent_card = rule(CARD + "GetRecharge", K.FAULT_KIND_UNAVAILABLE)
    # One credit lands with its answer lost; then the card system stops answering about credits.
    await ops.card_faults_set(rule(CARD + "ConfirmRecharge", K.FAULT_KIND_LOST_RESPONSE), silent_card)
    landed = await ops.create(landed_card, 20_000)
    await ops.pay(landed.order_no)
    await ops.until(landed.order_no, S.ORDER_STATUS_CREDIT_UNKNOWN, REVIEW)
    await ops.card_faults_set(rule(CARD + "ConfirmRecharge", K.FAULT_KIND_UNAVAILABLE), silent_card)
    never = await ops.create(never_card, 20_000)
    to_refund = await ops.create(refund_card, 20_000)
    await asyncio.gather(ops.pay(never.order_no), ops.pay(to_refund.order_no))
    for order in (landed, never, to_refund):
        reviewed = await ops.until(order.order_no, REVIEW)
        assert f"{MAX_ATTEMPTS} undecided attempts" in reviewed.failure_reason
    await ops.clear_faults()  # the card system answers again

    refused = await ops.cli("resolve", landed.order_no, "--action", "refund", *TICKET)
    assert refused.returncode == 1 and "CARD_CREDITED" in refused.stderr
    credited = await ops.cli("resolve", never.order_no, "--action", "confirm-credit", *TICKET)
    assert credited.returncode == 0 and "CREDITED" in credited.stdout
    refunded = await ops.cli("resolve", to_refund.order_no, "--action", "refund", *TICKET)
    assert refunded.returncode == 0 and "voided; refund" in refunded.stdout

    assert (await ops.order(landed.order_no)).status == S.ORDER_STATUS_CREDITED
    assert (await ops.order(never.order_no)).status == S.ORDER_STATUS_CREDITED
    ended = await ops.until(to_refund.order_no, S.ORDER_STATUS_REFUNDED)
    assert ended.out_refund_no == f"{to_refund.order_no}-R1"
    for card_no, order in ((landed_card, landed), (never_card, never), (refund_card, to_refund)):
        await ops.money_holds(card_no, order)


async def test_the_cli_shows_one_order(ops: Ops) -> None:
    order = await ops.create(await ops.new_card(), 20_000)
    shown = await ops.cli("order", order.order_no, "--merchant-id", ops.merchant_id)
    assert shown.returncode == 0, shown.stderr
    assert order.order_no in shown.stdout and "AWAITING_PAYMENT" in shown.stdout
    assert f"{ops.merchant_id} (configuration v" in shown.stdout
    elsewhere = await ops.cli("order", order.order_no, "--merchant-id", "not-the-merchant")
    assert elsewhere.returncode == 1 and "NOT_FOUND" in elsewhere.stderr


async def test_the_cli_runs_the_sentinel_and_prints_its_report(ops: Ops) -> None:
    run = await ops.cli("sentinel", "--ignore-hold")
    assert run.returncode == 0, run.stderr
    lines = dict(line.split() for line in run.stdout.splitlines()[1:])
    assert set(lines) >= {"examined", "credited", "refunded", "closed", "still_unknown", "manual_review"}
    assert all(value.isdigit() for value in lines.values())
    unknown = await ops.cli("timeline", "R000")
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr
