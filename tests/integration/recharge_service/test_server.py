"""The recharge center as a gRPC server (port 0) in front of fake card, WeChat and POS servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
import pytest

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.channels import aio_channel
from rc_common.grpc_status import error_field, error_info
from rc_common.migrations import migrate
from recharge_service.bootstrap import App, build_app
from recharge_service.domain.order import Channel, OrderStatus, RechargeOrder
from recharge_service.migrations import SCHEMA
from recharge_service.settings import (
    ConfirmSettings,
    DatabaseSettings,
    LimitSettings,
    NotifySettings,
    OutboxSettings,
    RechargeSettings,
    RemoteSettings,
)
from tests import auth
from tests.auth import write_key_file
from tests.integration.recharge_service.conftest import CARD_NO, MCHID, Wechat
from tests.integration.recharge_service.fakes import MERCHANT, SUB_MCHID
from tests.integration.recharge_service.grpc_fakes import (
    FakeCallbacks,
    FakeCardSystem,
    FakeMessages,
    FakeWechat,
    serving,
)
from tests.waiting import eventually
from wechat_mock.adapters.keys import PlatformKeys


@dataclass
class Running:
    app: App
    center: recharge_pb2_grpc.RechargeCenterStub
    ops: recharge_pb2_grpc.RechargeOpsStub
    notify: wechatpay_pb2_grpc.PaymentNotificationsStub
    card: FakeCardSystem
    wechat: FakeWechat
    messages: FakeMessages
    pos: FakeCallbacks


@pytest.fixture
async def running(tmp_path: Path, platform_keys: tuple[Path, PlatformKeys]) -> AsyncIterator[Running]:
    card, wechat, messages, pos = FakeCardSystem(), FakeWechat(), FakeMessages(), FakeCallbacks()
    async with (
        serving(card) as card_server,
        serving(wechat, messages) as wechat_server,
        serving(pos) as pos_server,
    ):
        settings = RechargeSettings(
            listen="127.0.0.1:0",
            node_id=NODE,
            auth_key_file=write_key_file(tmp_path),
            grace=1.0,
            database=DatabaseSettings(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"),
            remote=RemoteSettings(
                card_target=card_server.address,
                payment_target=wechat_server.address,
                attempts=2,
                deadline=0.5,
                backoff=0.01,
            ),
            confirm=ConfirmSettings(backoff=0.01, deadline=0.5),
            notify=NotifySettings(wechat_keys_dir=str(platform_keys[0]), wechat_mchid=MCHID),
            outbox=OutboxSettings(interval=0.05, backoff=0.01, backoff_max=0.05),
            limits=LimitSettings(max_open_orders_per_card=0),  # many unpaid orders on one card here
        )
        await migrate(settings.database.url, SCHEMA)  # the step before every start
        app = await build_app(settings)
        await app.server.start()
        app.dispatcher.start()
        async with aio_channel(app.server.address, auth.client()) as channel:
            ops = recharge_pb2_grpc.RechargeOpsStub(channel)
            await open_merchant(ops, MERCHANT, SUB_MCHID, {recharge_pb2.CHANNEL_POS: pos_server.address})
            await open_merchant(ops, SHOP_B, SUB_MCHID_B)
            yield Running(
                app,
                recharge_pb2_grpc.RechargeCenterStub(channel),
                ops,
                wechatpay_pb2_grpc.PaymentNotificationsStub(channel),
                card,
                wechat,
                messages,
                pos,
            )
        await app.server.stop(1.0)


#: The served replica's ``--node-id``.
NODE = "n1"
#: A second merchant beside the test merchant ``shop-a``; both partner mode.
SHOP_B, SUB_MCHID_B = "shop-b", "1900000202"


async def open_merchant(
    ops: recharge_pb2_grpc.RechargeOpsStub,
    merchant_id: str = MERCHANT,
    sub_mchid: str = SUB_MCHID,
    callbacks: dict[int, str] | None = None,
) -> recharge_pb2.Merchant:
    """Open a partner-mode merchant selling through every channel, as an operator would."""
    merchant = recharge_pb2.Merchant(
        merchant_id=merchant_id,
        display_name=f"Shop {merchant_id}",
        channels=[
            recharge_pb2.CHANNEL_OFFICIAL_ACCOUNT,
            recharge_pb2.CHANNEL_POS,
            recharge_pb2.CHANNEL_THIRD_PARTY,
        ],
        callbacks=[
            recharge_pb2.CallbackTarget(channel=channel, target=target)  # type: ignore[arg-type]
            for channel, target in (callbacks or {}).items()
        ],
        order_expiry_seconds=1800,
        wechat=recharge_pb2.WechatPayConfig(
            mode=recharge_pb2.WECHAT_MODE_PARTNER, mchid=sub_mchid, appid="wx1111111111111111"
        ),
    )
    request = recharge_pb2.PutMerchantRequest(
        merchant=merchant, expected_version=0, reason="open the test merchant"
    )
    opened: recharge_pb2.Merchant = await ops.PutMerchant(request)
    assert opened.version == 1
    return opened


def create_request(key: str = "pos-1", **changes: object) -> recharge_pb2.CreateRechargeOrderRequest:
    values: dict[str, object] = {
        "card_no": CARD_NO,
        "pay_amount_fen": 50_000,
        "channel": recharge_pb2.CHANNEL_POS,
        "idempotency_key": key,
        "payer_openid": "o-payer-1",
        "merchant_id": MERCHANT,
    }
    values.update(changes)
    return recharge_pb2.CreateRechargeOrderRequest(**values)  # type: ignore[arg-type]


def get_request(order_no: str, merchant_id: str = MERCHANT) -> recharge_pb2.GetRechargeOrderRequest:
    return recharge_pb2.GetRechargeOrderRequest(order_no=order_no, merchant_id=merchant_id)


class HasCenter(Protocol):
    center: recharge_pb2_grpc.RechargeCenterStub


async def wait_for_status(
    running: HasCenter, order_no: str, wanted: int, within: float = 10.0
) -> recharge_pb2.RechargeOrder:
    async def reached() -> recharge_pb2.RechargeOrder | None:
        order = await running.center.GetRechargeOrder(get_request(order_no))
        return order if order.status == wanted else None

    name = recharge_pb2.OrderStatus.Name(wanted)  # type: ignore[arg-type]
    return await eventually(reached, within=within, what=f"order {order_no} reaching {name}")


def as_domain(order: recharge_pb2.RechargeOrder) -> RechargeOrder:
    return RechargeOrder(
        order_no=order.order_no,
        idempotency_key=order.idempotency_key,
        card_no=order.card_no,
        channel=Channel(order.channel),
        pay_amount_fen=order.pay_amount_fen,
        payer_openid=order.payer_openid,
        created_at=order.created_at.ToDatetime(),
        updated_at=order.updated_at.ToDatetime(),
        expires_at=order.expires_at.ToDatetime(),
        merchant_id=order.merchant_id,
        merchant_version=order.merchant_version,
    )


async def test_a_top_up_goes_from_create_to_credited_with_its_followups(
    running: Running, wechat: Wechat
) -> None:
    created = await running.center.CreateRechargeOrder(create_request())
    assert created.status == recharge_pb2.ORDER_STATUS_AWAITING_PAYMENT
    assert (created.pay_amount_fen, created.bonus_fen, created.credit_amount_fen, created.rule_version) == (
        50_000,
        2_000,
        52_000,
        3,
    )
    assert created.prepay_id == f"wx_{created.order_no}"
    headers, body = wechat.paid(as_domain(created))
    ack = await running.notify.Notify(wechatpay_pb2.NotifyRequest(headers=headers, body=body))
    assert (ack.code, ack.message) == ("SUCCESS", "")
    credited = await wait_for_status(running, created.order_no, recharge_pb2.ORDER_STATUS_CREDITED)
    assert credited.transaction_id and credited.paid_at.seconds > 0
    await eventually(lambda: bool(running.pos.seen and running.messages.messages))
    assert list(running.pos.seen) == [f"{created.order_no}.credited.callback"]

    timeline = await running.ops.GetOrderTimeline(
        recharge_pb2.GetOrderTimelineRequest(order_no=created.order_no)
    )
    transitions = [
        (recharge_pb2.OrderStatus.Name(e.from_status), recharge_pb2.OrderStatus.Name(e.to_status))
        for e in timeline.events
        if e.kind == "transition"
    ]
    assert transitions == [
        ("ORDER_STATUS_UNSPECIFIED", "ORDER_STATUS_CREATED"),
        ("ORDER_STATUS_CREATED", "ORDER_STATUS_AWAITING_PAYMENT"),
        ("ORDER_STATUS_AWAITING_PAYMENT", "ORDER_STATUS_PAID"),
        ("ORDER_STATUS_PAID", "ORDER_STATUS_CREDITED"),
    ]
    calls = [
        e.method.rsplit("/", 1)[-1]
        for e in timeline.events
        if e.kind == "remote_call" and e.outcome != "sent"
    ]
    assert calls == ["PreRecharge", "CreatePrepay", "ConfirmRecharge"]
    assert [e.seq for e in timeline.events] == sorted(e.seq for e in timeline.events)
    assert any(e.kind == "notification" and e.outcome == "accepted" for e in timeline.events)


async def test_every_timeline_row_names_the_replica_that_wrote_it(running: Running, wechat: Wechat) -> None:
    created = await running.center.CreateRechargeOrder(create_request())
    headers, body = wechat.paid(as_domain(created))
    await running.notify.Notify(wechatpay_pb2.NotifyRequest(headers=headers, body=body))
    await wait_for_status(running, created.order_no, recharge_pb2.ORDER_STATUS_CREDITED)
    request = recharge_pb2.GetOrderTimelineRequest(order_no=created.order_no)

    async def delivered() -> recharge_pb2.GetOrderTimelineResponse | None:
        reply = await running.ops.GetOrderTimeline(request)
        return reply if sum(e.kind == "outbox_delivery" for e in reply.events) == 2 else None

    timeline = await eventually(delivered, what="the notice and the callback on the timeline")
    kinds = {e.kind for e in timeline.events}
    assert kinds == {"transition", "remote_call", "notification", "outbox_delivery"}
    assert {e.node for e in timeline.events} == {NODE}


async def test_bad_input_is_invalid_argument_naming_the_field(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await running.center.CreateRechargeOrder(create_request(channel=recharge_pb2.CHANNEL_UNSPECIFIED))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_field(error.value) == "channel"
    assert running.card.received == []


async def test_an_unknown_pre_recharge_answers_unavailable_with_the_order_number_and_resumes(
    running: Running,
) -> None:
    running.card.script("PreRecharge", "unavailable", "unavailable")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await running.center.CreateRechargeOrder(create_request("retry-me"))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info(error.value)
    assert info is not None and info.reason == "PRE_RECHARGE_UNKNOWN"
    order_no = info.metadata["order_no"]
    resumed = await running.center.CreateRechargeOrder(create_request("retry-me"))
    assert resumed.order_no == order_no
    assert resumed.status == recharge_pb2.ORDER_STATUS_AWAITING_PAYMENT


async def test_a_refusal_answers_failed_precondition_with_the_card_reason(running: Running) -> None:
    running.card.script("PreRecharge", ("refuse", "AMOUNT_ABOVE_MAXIMUM"))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await running.center.CreateRechargeOrder(create_request("too-much"))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(error.value)
    assert info is not None and info.reason == "AMOUNT_ABOVE_MAXIMUM"
    rejected = await running.center.GetRechargeOrder(get_request(info.metadata["order_no"]))
    assert rejected.status == recharge_pb2.ORDER_STATUS_REJECTED
    # A rejected order tells the business system too.
    await eventually(lambda: f"{rejected.order_no}.rejected.callback" in running.pos.seen)


async def test_orders_are_listed_newest_first_by_filter_and_page(running: Running) -> None:
    made = [await running.center.CreateRechargeOrder(create_request(f"list-{i}")) for i in range(5)]
    other = await running.center.CreateRechargeOrder(
        create_request("other-card", card_no="8800000000000002", channel=recharge_pb2.CHANNEL_THIRD_PARTY)
    )
    seen: list[str] = []
    token = ""
    while True:
        page = await running.center.ListRechargeOrders(
            recharge_pb2.ListRechargeOrdersRequest(
                filter=recharge_pb2.OrderFilter(
                    card_no=CARD_NO, statuses=[recharge_pb2.ORDER_STATUS_AWAITING_PAYMENT]
                ),
                page=recharge_pb2.PageRequest(page_size=2, page_token=token),
                merchant_id=MERCHANT,
            )
        )
        assert len(page.orders) <= 2
        seen += [o.order_no for o in page.orders]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted((o.order_no for o in made), reverse=True)
    by_channel = await running.center.ListRechargeOrders(
        recharge_pb2.ListRechargeOrdersRequest(
            filter=recharge_pb2.OrderFilter(channel=recharge_pb2.CHANNEL_THIRD_PARTY), merchant_id=MERCHANT
        )
    )
    assert [o.order_no for o in by_channel.orders] == [other.order_no]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await running.center.ListRechargeOrders(
            recharge_pb2.ListRechargeOrdersRequest(
                page=recharge_pb2.PageRequest(page_token="garbage"), merchant_id=MERCHANT
            )
        )
    assert error_field(error.value) == "page.page_token"


async def test_unknown_orders_are_not_found(running: Running) -> None:
    for call in (
        running.center.GetRechargeOrder(get_request("R000")),
        running.ops.GetOrderTimeline(recharge_pb2.GetOrderTimelineRequest(order_no="R000")),
        running.ops.GetOrderTimeline(
            recharge_pb2.GetOrderTimelineRequest(order_no="R000", merchant_id=MERCHANT)
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_forged_notification_over_grpc_gets_fail(running: Running, wechat: Wechat) -> None:
    created = await running.center.CreateRechargeOrder(create_request("forged"))
    headers, body = wechat.paid(as_domain(created))
    body = body.replace(b'"summary":"', b'"summary":"x', 1)
    ack = await running.notify.Notify(wechatpay_pb2.NotifyRequest(headers=headers, body=body))
    assert ack.code == "FAIL"
    order = await running.center.GetRechargeOrder(get_request(created.order_no))
    assert order.status == OrderStatus.AWAITING_PAYMENT


async def test_an_order_over_grpc_names_its_merchant_and_the_version_it_keeps(running: Running) -> None:
    created = await running.center.CreateRechargeOrder(create_request("named"))
    got = await running.center.GetRechargeOrder(get_request(created.order_no))
    listed = await running.center.ListRechargeOrders(
        recharge_pb2.ListRechargeOrdersRequest(merchant_id=MERCHANT)
    )
    for order in (created, got, *listed.orders):
        assert (order.merchant_id, order.merchant_version) == (MERCHANT, 1)


async def test_another_merchants_order_is_not_found(running: Running) -> None:
    created = await running.center.CreateRechargeOrder(create_request("mine"))
    assert (await running.center.GetRechargeOrder(get_request(created.order_no))).order_no == created.order_no
    mine = recharge_pb2.GetOrderTimelineRequest(order_no=created.order_no, merchant_id=MERCHANT)
    assert (await running.ops.GetOrderTimeline(mine)).events
    for call in (
        running.center.GetRechargeOrder(get_request(created.order_no, SHOP_B)),
        running.ops.GetOrderTimeline(
            recharge_pb2.GetOrderTimelineRequest(order_no=created.order_no, merchant_id=SHOP_B)
        ),
        running.ops.ResolveAnomaly(
            recharge_pb2.ResolveAnomalyRequest(
                order_no=created.order_no,
                action=recharge_pb2.RESOLVE_ACTION_RETRY_NOW,
                reason="not my order",
                merchant_id=SHOP_B,
            )
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    after = await running.center.GetRechargeOrder(get_request(created.order_no))
    assert (after.status, after.version) == (created.status, created.version)


async def test_a_merchant_lists_only_its_own_orders(running: Running) -> None:
    mine = [await running.center.CreateRechargeOrder(create_request(f"a-{i}")) for i in range(3)]
    theirs = await running.center.CreateRechargeOrder(create_request("b-0", merchant_id=SHOP_B))

    async def listed(merchant_id: str, card_no: str = "") -> list[str]:
        request = recharge_pb2.ListRechargeOrdersRequest(
            merchant_id=merchant_id, filter=recharge_pb2.OrderFilter(card_no=card_no)
        )
        return [o.order_no for o in (await running.center.ListRechargeOrders(request)).orders]

    assert await listed(SHOP_B) == [theirs.order_no]
    assert await listed(SHOP_B, CARD_NO) == [theirs.order_no]  # the same card number, A's orders left out
    assert await listed(MERCHANT) == sorted((o.order_no for o in mine), reverse=True)
    assert await listed("shop-z") == []


async def test_anomalies_and_timelines_asked_for_by_another_merchant_leave_out_this_ones_order(
    running: Running, wechat: Wechat
) -> None:
    created = await running.center.CreateRechargeOrder(create_request("stuck"))
    running.card.script("ConfirmRecharge", *["unavailable"] * 5)  # the credit's outcome stays unknown
    headers, body = wechat.paid(as_domain(created))
    ack = await running.notify.Notify(wechatpay_pb2.NotifyRequest(headers=headers, body=body))
    assert ack.code == "SUCCESS"
    await wait_for_status(running, created.order_no, recharge_pb2.ORDER_STATUS_CREDIT_UNKNOWN)

    async def anomalies(merchant_id: str = "") -> list[str]:
        request = recharge_pb2.ListAnomaliesRequest(merchant_id=merchant_id)
        return [a.order.order_no for a in (await running.ops.ListAnomalies(request)).anomalies]

    assert await anomalies() == [created.order_no]  # every merchant's: an operator's view
    assert await anomalies(MERCHANT) == [created.order_no]
    assert await anomalies(SHOP_B) == []
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await running.ops.GetOrderTimeline(
            recharge_pb2.GetOrderTimelineRequest(order_no=created.order_no, merchant_id=SHOP_B)
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    # Without merchant_id (an operator) the timeline is there.
    timeline = await running.ops.GetOrderTimeline(
        recharge_pb2.GetOrderTimelineRequest(order_no=created.order_no)
    )
    assert any(e.to_status == recharge_pb2.ORDER_STATUS_CREDIT_UNKNOWN for e in timeline.events)


@pytest.mark.parametrize("merchant_id", ["", "shop b!"])
async def test_a_request_without_a_valid_merchant_id_is_invalid_argument_naming_it(
    running: Running, merchant_id: str
) -> None:
    created = await running.center.CreateRechargeOrder(create_request("named-merchant"))
    received = len(running.card.received)
    for call in (
        running.center.CreateRechargeOrder(create_request("no-merchant", merchant_id=merchant_id)),
        running.center.GetRechargeOrder(get_request(created.order_no, merchant_id)),
        running.center.ListRechargeOrders(recharge_pb2.ListRechargeOrdersRequest(merchant_id=merchant_id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_field(error.value) == "merchant_id"
    assert len(running.card.received) == received  # no order was started
    if merchant_id:  # optional on the operators' calls, but checked when given
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await running.ops.ListAnomalies(recharge_pb2.ListAnomaliesRequest(merchant_id=merchant_id))
        assert (error.value.code(), error_field(error.value)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "merchant_id",
        )


async def test_an_unknown_merchant_is_not_found_and_starts_nothing(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await running.center.CreateRechargeOrder(create_request("nobody", merchant_id="shop-z"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert running.card.received == [] and running.wechat.received == []
