"""Against the running services, each way round between the direct-mode and the partner-mode
merchant: a merchant cannot top up or spend another merchant's card (refused as if the card did
not exist, nothing charged or credited anywhere), and never sees another merchant's order — not by
its number, not in a list, not its timeline, not through an operator action."""

from __future__ import annotations

import uuid

import grpc
import pytest

from protos.card.v1 import card_pb2
from protos.recharge.v1 import recharge_pb2
from rc_common.grpc_status import error_info, error_reason
from scripts.merchants import DemoMerchant
from tests.e2e.merchants import BOTH, other_than
from tests.e2e.recharge_flow.conftest import Clients

CREDITED = recharge_pb2.ORDER_STATUS_CREDITED
NOT_FOUND = grpc.StatusCode.NOT_FOUND


async def order_numbers(clients: Clients, card_no: str = "") -> list[str]:
    """Every order ListRechargeOrders shows the clients' merchant (on ``card_no`` when given)."""
    found: list[str] = []
    token = ""
    while True:
        page = await clients.center.ListRechargeOrders(
            recharge_pb2.ListRechargeOrdersRequest(
                merchant_id=clients.merchant_id,
                filter=recharge_pb2.OrderFilter(card_no=card_no),
                page=recharge_pb2.PageRequest(page_size=500, page_token=token),
            ),
            timeout=5,
        )
        found += [o.order_no for o in page.orders]
        assert {o.merchant_id for o in page.orders} <= {clients.merchant_id}
        token = page.next_page_token
        if not token:
            return found


@BOTH
async def test_a_card_of_another_merchant_is_refused_as_missing_and_nothing_is_charged_or_credited(
    clients: Clients, merchant: DemoMerchant
) -> None:
    owner = clients.as_merchant(other_than(merchant))
    card_no = await owner.new_card()
    topped_up = await owner.create(card_no, 20_000)
    await owner.pay(topped_up.order_no)
    await owner.wait_for(topped_up.order_no, lambda o: o.status == CREDITED)
    balance = await owner.balance(card_no)
    journal = await owner.journal(card_no)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await clients.create(card_no, 100_000)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(refused.value)
    assert info is not None and info.reason == "CARD_NOT_FOUND"
    order_no = str(info.metadata["order_no"])
    clients.created[order_no] = merchant  # its follow-up (a REJECTED callback) is still sent

    order = await clients.order(order_no)
    assert (order.status, order.failure_reason, order.prepay_id) == (
        recharge_pb2.ORDER_STATUS_REJECTED,
        "CARD_NOT_FOUND",
        "",
    )
    answered = [
        (e.method.rsplit("/", 1)[-1], e.outcome)
        for e in await clients.timeline(order_no)
        if e.kind == "remote_call" and e.outcome != "sent"
    ]
    assert answered == [("PreRecharge", "refused"), ("CreatePrepay", "not_sent")]  # nobody can pay it
    # Nothing at the card system or at WeChat, for either merchant.
    for side in (clients, owner):
        with pytest.raises(grpc.aio.AioRpcError) as no_record:
            await side.recharge(order_no)
        assert no_record.value.code() == NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as no_trade:
            await side.trade(order_no)
        assert no_trade.value.code() == NOT_FOUND
    # The card itself: hidden from the other merchant, unchanged for its own.
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await clients.balance(card_no)
    assert hidden.value.code() == NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as not_spent:
        await clients.cards.Consume(
            card_pb2.ConsumeRequest(
                request_id=f"spend-{order_no}",
                card_no=card_no,
                amount_fen=1_000,
                merchant_id=clients.merchant_id,
            ),
            timeout=5,
        )
    assert not_spent.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(not_spent.value) == "CARD_NOT_FOUND"
    assert await owner.balance(card_no) == balance == topped_up.credit_amount_fen
    assert await owner.journal(card_no) == journal


@BOTH
async def test_another_merchants_order_is_not_found_not_listed_and_its_timeline_is_hidden(
    clients: Clients, merchant: DemoMerchant
) -> None:
    card_no = await clients.new_card()
    order = await clients.create(card_no, 20_000)
    stranger = clients.as_merchant(other_than(merchant))

    assert (await clients.order(order.order_no)).status == recharge_pb2.ORDER_STATUS_AWAITING_PAYMENT
    with pytest.raises(grpc.aio.AioRpcError) as not_found:
        await stranger.order(order.order_no)
    assert (not_found.value.code(), error_reason(not_found.value)) == (NOT_FOUND, "NOT_FOUND")

    assert await order_numbers(clients, card_no) == [order.order_no]
    assert await order_numbers(stranger, card_no) == []
    assert order.order_no not in await order_numbers(stranger)

    own_timeline = await clients.timeline(order.order_no)
    assert own_timeline
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await stranger.timeline(order.order_no)
    assert (hidden.value.code(), error_reason(hidden.value)) == (NOT_FOUND, "NOT_FOUND")

    with pytest.raises(grpc.aio.AioRpcError) as no_action:
        await stranger.ops.ResolveAnomaly(
            recharge_pb2.ResolveAnomalyRequest(
                order_no=order.order_no,
                action=recharge_pb2.RESOLVE_ACTION_RETRY_NOW,
                operator="mallory",
                reason="probing another merchant's order",
                merchant_id=stranger.merchant_id,
            ),
            timeout=10,
        )
    assert (no_action.value.code(), error_reason(no_action.value)) == (NOT_FOUND, "NOT_FOUND")
    after = await clients.timeline(order.order_no)
    assert [e for e in after if e.kind == "operator_action"] == []
    assert (await clients.order(order.order_no)).version == order.version


@BOTH
async def test_the_same_idempotency_key_makes_one_order_per_merchant(
    clients: Clients, merchant: DemoMerchant
) -> None:
    stranger = clients.as_merchant(other_than(merchant))
    key = f"shared-{uuid.uuid4().hex}"
    mine = await clients.create(await clients.new_card(), 20_000, key=key)
    theirs = await stranger.create(await stranger.new_card(), 30_000, key=key)
    assert theirs.order_no != mine.order_no
    again = await clients.create(mine.card_no, 20_000, openid=mine.payer_openid, key=key)
    assert again.order_no == mine.order_no  # the key still names this merchant's order
