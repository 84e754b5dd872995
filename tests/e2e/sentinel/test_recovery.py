"""Against the running services: the sentinel finishes what the notify path could not — lost
notifications, late and lost credits, a crash between PAID and the credit, refunds that stay
PROCESSING — and every order ends with its money right (I1-I4) and its visits on the timeline.
The sentinel asks WeChat as the order's merchant: direct and partner mode are both run where it
queries or refunds."""

from __future__ import annotations

import pytest

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from tests.e2e.merchants import BOTH
from tests.e2e.sentinel.conftest import CARD, GATEWAY, Ops, restart, rule

S = recharge_pb2
K = faults_pb2
DROP_NOTIFICATIONS = rule("notify", K.FAULT_KIND_DROP)


@BOTH
async def test_a_lost_payment_notification_is_found_by_query_and_credited(ops: Ops) -> None:
    card_no = await ops.new_card()
    await ops.wechat_faults_set(DROP_NOTIFICATIONS)  # every delivery attempt is lost
    order = await ops.create(card_no, 50_000)
    await ops.pay(order.order_no)
    ended = await ops.until(order.order_no, S.ORDER_STATUS_CREDITED)
    paid = await ops.transitions_to(order.order_no, S.ORDER_STATUS_PAID)
    assert [e.actor for e in paid] == ["sentinel"]
    events = await ops.timeline(order.order_no)
    assert [e.actor for e in await ops.remote_calls(order.order_no, "QueryOrder")][:1] == ["sentinel"]
    assert not [e for e in events if e.kind == "notification" and e.actor == "wechat"]
    await ops.money_holds(card_no, ended)


@pytest.mark.parametrize(
    "kind", [K.FAULT_KIND_LATE_SUCCESS, K.FAULT_KIND_LOST_RESPONSE], ids=["late", "lost"]
)
async def test_a_credit_that_landed_unseen_is_found_by_the_sentinel_and_never_refunded(
    ops: Ops, kind: int
) -> None:
    card_no = await ops.new_card()
    await ops.card_faults_set(rule(CARD + "ConfirmRecharge", kind, times=3, delay_ms=800))
    order = await ops.create(card_no, 50_000)
    await ops.pay(order.order_no)
    await ops.until(order.order_no, S.ORDER_STATUS_CREDIT_UNKNOWN, S.ORDER_STATUS_CREDITED)
    ended = await ops.until(order.order_no, S.ORDER_STATUS_CREDITED)
    assert S.ORDER_STATUS_CREDIT_UNKNOWN in await ops.statuses_visited(order.order_no)
    credited = await ops.transitions_to(order.order_no, S.ORDER_STATUS_CREDITED)
    assert [e.actor for e in credited] == ["sentinel"]
    assert "credited" in [v.outcome for v in await ops.visits(order.order_no)]
    assert not await ops.statuses_visited(order.order_no) & {
        S.ORDER_STATUS_REFUNDING,
        S.ORDER_STATUS_REFUNDED,
    }
    await ops.money_holds(card_no, ended)


async def test_a_crash_between_paid_and_the_credit_is_finished_after_a_restart(ops: Ops) -> None:
    card_no = await ops.new_card()
    # The card system sits on the confirm (a lock wait), so the order stays PAID a while.
    await ops.card_faults_set(rule(CARD + "ConfirmRecharge", K.FAULT_KIND_DELAY, times=1, delay_ms=2_500))
    order = await ops.create(card_no, 20_000)
    await ops.pay(order.order_no)
    # the notify path's confirm keeps it PAID for about 1.5 s: look often
    await ops.wait_for(order.order_no, lambda o: o.status == S.ORDER_STATUS_PAID, 10, "PAID", interval=0.01)
    restart(ops.stack.recharge)  # kill -9, same port, same database
    assert S.ORDER_STATUS_CREDIT_UNKNOWN not in await ops.statuses_visited(order.order_no)  # died while PAID
    ended = await ops.until(order.order_no, S.ORDER_STATUS_CREDITED)
    # The restarted process finishes it: its sentinel's visit, or — when WeChat's first delivery of
    # the notification timed out before the crash (a loaded machine) — WeChat's retry to it.
    events = await ops.timeline(order.order_no)
    finished = [e for e in events if e.kind == "sentinel_visit" and e.outcome == "credited"]
    retried = [e for e in events if e.kind == "notification"]
    assert finished or retried, [(e.kind, e.outcome, e.detail) for e in events]
    await ops.money_holds(card_no, ended)


@BOTH
async def test_a_card_frozen_after_the_pre_recharge_is_voided_then_refunded(ops: Ops) -> None:
    card_no = await ops.new_card()
    order = await ops.create(card_no, 20_000)
    await ops.admin.FreezeCard(card_pb2.FreezeCardRequest(card_no=card_no), timeout=5)
    await ops.pay(order.order_no)
    ended = await ops.until(order.order_no, S.ORDER_STATUS_REFUNDED)
    assert "CARD_FROZEN" in ended.failure_reason
    await ops.money_holds(card_no, ended)  # includes: the void answered before CreateRefund


async def test_a_refund_processing_for_a_while_is_settled_by_the_sentinel(ops: Ops) -> None:
    card_no = await ops.new_card()
    await ops.wechat_faults_set(
        rule(GATEWAY + "CreateRefund", K.FAULT_KIND_REFUND_PROCESSING, times=1, delay_ms=4_000),
        DROP_NOTIFICATIONS,  # neither the payment nor the refund notification arrives
    )
    order = await ops.create(card_no, 20_000)
    await ops.admin.FreezeCard(card_pb2.FreezeCardRequest(card_no=card_no), timeout=5)
    await ops.pay(order.order_no)
    ended = await ops.until(order.order_no, S.ORDER_STATUS_REFUNDED, within=40)
    visits = await ops.visits(order.order_no)
    waiting = [v for v in visits if v.outcome == "refunding" and "PROCESSING" in v.detail]
    assert waiting, [(v.outcome, v.detail) for v in visits]
    refunded = await ops.transitions_to(order.order_no, S.ORDER_STATUS_REFUNDED)
    assert [e.actor for e in refunded] == ["sentinel"]
    assert len(await ops.remote_calls(order.order_no, "CreateRefund")) == 1
    await ops.money_holds(card_no, ended)
