"""The whole flow on WeChat Pay's own wire, against the real processes: prepay, query, refund and
close as APIv3 over HTTPS, notifications POSTed over HTTPS to the recharge center's endpoint. A
top-up is credited once (direct and partner mode); a card frozen after payment is voided then
refunded over HTTP; a lost notification is found by the sentinel's query over HTTP; and answers
whose signature does not verify leave the outcome unknown — never refused, never refunded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from rc_common.grpc_status import error_reason
from scripts.merchants import PROVIDER_MCHID, DemoMerchant
from scripts.stack import build_stack
from tests.e2e.http_wire.conftest import MISMATCHED, wechat_events
from tests.e2e.merchants import BOTH
from tests.e2e.recharge_flow.conftest import Clients

S = recharge_pb2
K = faults_pb2


def remote(events: list[recharge_pb2.TimelineEvent]) -> list[tuple[str, str]]:
    return [(e.method.rsplit("/", 1)[-1], e.outcome) for e in events if e.kind == "remote_call"]


@BOTH
async def test_a_top_up_paid_over_https_is_credited_once_from_the_https_notification(
    clients: Clients, merchant: DemoMerchant
) -> None:
    card_no = await clients.new_card()
    order = await clients.create(card_no, 100_000)
    assert order.status == S.ORDER_STATUS_AWAITING_PAYMENT and order.prepay_id
    paid = await clients.pay(order.order_no)
    if merchant.direct:
        assert (paid.mchid, paid.sp_mchid, paid.sub_mchid) == (merchant.mchid, "", "")
        assert paid.appid == merchant.appid  # the appid the recharge center put in the JSON
    else:
        assert (paid.mchid, paid.sp_mchid, paid.sub_mchid) == ("", PROVIDER_MCHID, merchant.mchid)
    credited = await clients.wait_for(order.order_no, lambda o: o.status == S.ORDER_STATUS_CREDITED)
    assert credited.transaction_id == paid.transaction_id
    assert await clients.balance(card_no) == 100_000 + order.bonus_fen
    assert await clients.principal_credits(card_no, order.order_no) == 1

    events = await clients.timeline(order.order_no)
    assert ("CreatePrepay", "done") in remote(events)
    notes = [e for e in events if e.kind == "notification"]
    assert [e.outcome for e in notes][:1] == ["accepted"]
    # WeChat POSTed it to the notify_url of the prepay — only an APIv3 prepay names one (a gRPC
    # CreatePrepay's would go to --notify-target): the recharge center's HTTPS endpoint.
    stack = clients.stack
    assert stack.notify_url.startswith("https://")
    delivered = wechat_events(stack, "notification_delivered", out_trade_no=order.order_no)
    assert delivered and {d["target"] for d in delivered} == {stack.notify_url}


@BOTH
async def test_a_card_frozen_after_payment_is_voided_then_refunded_over_https(
    clients: Clients, merchant: DemoMerchant
) -> None:
    card_no = await clients.new_card()
    order = await clients.create(card_no, 20_000)
    await clients.admin.FreezeCard(card_pb2.FreezeCardRequest(card_no=card_no), timeout=5)
    await clients.pay(order.order_no)
    refunded = await clients.wait_for(order.order_no, lambda o: o.status == S.ORDER_STATUS_REFUNDED)
    assert (await clients.recharge(order.order_no)).status == card_pb2.PRE_RECHARGE_STATUS_VOIDED
    assert await clients.balance(card_no) == 0
    refund = await clients.refund(refunded.out_refund_no)
    assert refund.status == wechatpay_pb2.REFUND_STATUS_SUCCESS and refund.refund_fen == 20_000
    assert refund.merchant == merchant.wechat_ref()
    events = await clients.timeline(order.order_no)
    calls = [name for name, _ in remote(events)]
    assert calls.index("VoidRecharge") < calls.index("CreateRefund")
    notes = [(e.outcome, e.detail.split()[0]) for e in events if e.kind == "notification"]
    assert ("accepted", "REFUND.SUCCESS") in notes, notes
    targets = {
        d["target"]
        for d in wechat_events(clients.stack, "notification_delivered", out_trade_no=order.order_no)
    }
    assert targets == {clients.stack.notify_url}
    refund_notes = wechat_events(
        clients.stack, "notification_delivered", out_trade_no=order.order_no, event_type="REFUND.SUCCESS"
    )
    assert refund_notes, "the refund notification went over HTTPS"


@BOTH
async def test_a_lost_notification_is_found_by_the_sentinels_query_over_https(
    clients: Clients, merchant: DemoMerchant
) -> None:
    card_no = await clients.new_card()
    await clients.wechat_fault("notify", K.FAULT_KIND_DROP, 1000)  # every delivery attempt is lost
    order = await clients.create(card_no, 50_000)
    await clients.pay(order.order_no)
    await clients.wait_for(order.order_no, lambda o: o.status == S.ORDER_STATUS_CREDITED)
    events = await clients.timeline(order.order_no)
    paid = [e for e in events if e.kind == "transition" and e.to_status == S.ORDER_STATUS_PAID]
    assert [e.actor for e in paid] == ["sentinel"]
    # no notification arrived: the only one on record is the sentinel's query answer
    assert [(e.actor, e.method) for e in events if e.kind == "notification"] == [("sentinel", "query")]
    queries = [e for e in events if e.kind == "remote_call" and e.method.endswith("QueryOrder")]
    assert queries and queries[0].actor == "sentinel"
    assert await clients.principal_credits(card_no, order.order_no) == 1
    assert not wechat_events(clients.stack, "notification_delivered", out_trade_no=order.order_no)


@pytest.mark.parametrize("merchant", [MISMATCHED], ids=["direct-wrong-key"])
async def test_answers_that_do_not_verify_leave_the_outcome_unknown_and_nothing_is_refunded(
    clients: Clients,
) -> None:
    card_no = await clients.new_card()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await clients.create(card_no, 30_000)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE, raised.value.details()
    assert error_reason(raised.value) == "PREPAY_UNKNOWN"
    orders = await clients.center.ListRechargeOrders(
        recharge_pb2.ListRechargeOrdersRequest(
            merchant_id=clients.merchant_id,
            filter=recharge_pb2.OrderFilter(card_no=card_no),
            page=recharge_pb2.PageRequest(page_size=10),
        ),
        timeout=5,
    )
    (order,) = orders.orders
    # WeChat did make the prepay (its answer is what could not be trusted): the customer pays it,
    # and the notification, signed with the key the recharge center does not hold, is refused.
    await clients.pay(order.order_no)
    events = []
    for _ in range(300):  # WeChat's schedule here: 0.2 s, 0.3 s, …
        events = await clients.timeline(order.order_no)
        if len([e for e in events if e.kind == "notification"]) >= 2:  # WeChat delivered it again
            break
        await asyncio.sleep(0.1)
    prepays = [e for e in events if e.kind == "remote_call" and e.method.endswith("CreatePrepay")]
    answers = [e.outcome for e in prepays if e.outcome != "sent"]
    assert answers and set(answers) == {"unknown"}, prepays
    assert all("RESPONSE_UNVERIFIED" in e.error for e in prepays if e.outcome == "unknown"), prepays
    notes = [e for e in events if e.kind == "notification"]
    assert len(notes) >= 2 and all(e.outcome != "accepted" for e in notes), notes
    undelivered = wechat_events(clients.stack, "notification_delivered", out_trade_no=order.order_no)
    assert not undelivered  # refused (4xx): WeChat keeps it to deliver again
    current = await clients.order(order.order_no)
    assert current.status == S.ORDER_STATUS_CREATED
    assert not [e for e in events if e.kind == "remote_call" and "Refund" in e.method]
    assert await clients.balance(card_no) == 0
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await clients.refund(f"{order.order_no}-R1")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_stack_knows_only_the_grpc_and_http_wires(tmp_path: Path) -> None:
    assert build_stack(tmp_path / "default").wire == "grpc"  # every existing caller: unchanged
    assert build_stack(tmp_path / "http", wire="http").wire == "http"
    with pytest.raises(ValueError, match="wire"):
        build_stack(tmp_path / "other", wire="carrier-pigeon")
