"""Against the running services: orders nobody paid end CLOSED — closed at WeChat first, then the
pre-recharge voided (a tombstone when it never arrived) — and nothing is credited or refunded."""

from __future__ import annotations

import grpc
import pytest

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from rc_common.grpc_status import error_info
from tests.e2e.sentinel.conftest import CARD, GATEWAY, Ops, rule

S = recharge_pb2
K = faults_pb2


async def create_unanswered(ops: Ops, card_no: str) -> str:
    """CreateRechargeOrder answers UNAVAILABLE (a dependency never answered); the order stays CREATED."""
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await ops.create(card_no, 20_000)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info(failed.value)
    assert info is not None
    return str(info.metadata["order_no"])


async def test_orders_nobody_paid_are_closed_at_wechat_then_voided_at_their_expiry(ops: Ops) -> None:
    unpaid_card, unknown_card, no_prepay_card = [await ops.new_card() for _ in range(3)]
    unpaid = (await ops.create(unpaid_card, 20_000)).order_no
    await ops.card_faults_set(rule(CARD + "PreRecharge", K.FAULT_KIND_UNAVAILABLE, times=3))
    never_recorded = await create_unanswered(ops, unknown_card)  # pre-recharge outcome unknown
    await ops.clear_faults()
    await ops.wechat_faults_set(rule(GATEWAY + "CreatePrepay", K.FAULT_KIND_UNAVAILABLE, times=3))
    no_prepay = await create_unanswered(ops, no_prepay_card)  # pre-recharge recorded, prepay unknown
    await ops.clear_faults()
    for order_no in (never_recorded, no_prepay):
        assert (await ops.order(order_no)).status == S.ORDER_STATUS_CREATED

    for card_no, order_no in (
        (unpaid_card, unpaid),
        (unknown_card, never_recorded),
        (no_prepay_card, no_prepay),
    ):
        ended = await ops.until(order_no, S.ORDER_STATUS_CLOSED)
        await ops.money_holds(card_no, ended)
        closed_by = await ops.transitions_to(order_no, S.ORDER_STATUS_CLOSED)
        assert [e.actor for e in closed_by] == ["sentinel"]

    # The unpaid order: WeChat closed it before the card system voided the pre-recharge.
    events = await ops.timeline(unpaid)
    methods = [e.method.rsplit("/", 1)[-1] for e in events if e.kind == "remote_call" and e.outcome == "done"]
    assert methods.index("CloseOrder") < methods.index("VoidRecharge")
    at_wechat = await ops.trade(unpaid)
    assert at_wechat.trade_state == wechatpay_pb2.TRADE_STATE_CLOSED
    with pytest.raises(grpc.aio.AioRpcError) as too_late:
        await ops.pay(unpaid)
    assert too_late.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # The pre-recharge that never arrived: a tombstone refuses it if it comes late.
    record = await ops.recharge(never_recorded)
    assert record.status == card_pb2.PRE_RECHARGE_STATUS_VOIDED and record.tombstone
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await ops.cards.PreRecharge(
            card_pb2.PreRechargeRequest(
                order_no=never_recorded,
                card_no=unknown_card,
                pay_amount_fen=20_000,
                merchant_id=ops.merchant_id,
            ),
            timeout=5,
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # The order whose prepay was never confirmed was closed at WeChat (which never had it) first.
    calls = [e.method.rsplit("/", 1)[-1] for e in await ops.timeline(no_prepay) if e.kind == "remote_call"]
    assert calls.index("CloseOrder") < calls.index("VoidRecharge")


async def test_the_tombstone_of_a_pre_recharge_that_never_arrived_belongs_to_the_orders_merchant(
    ops: Ops,
) -> None:
    card_no = await ops.new_card()
    await ops.card_faults_set(rule(CARD + "PreRecharge", K.FAULT_KIND_UNAVAILABLE, times=3))
    order_no = await create_unanswered(ops, card_no)
    await ops.clear_faults()
    await ops.until(order_no, S.ORDER_STATUS_CLOSED)
    record = await ops.recharge(order_no)
    assert record.status == card_pb2.PRE_RECHARGE_STATUS_VOIDED and record.tombstone
    assert record.merchant_id == ops.merchant_id
