"""The recharge center built with ``--payment-backend wechatpay-v3`` and ``--notify-http-listen``:
prepay over signed HTTP to a fake WeChat Pay, the payment notification over HTTP, credited; a
refused confirm refunds over HTTP. (The simulator's own HTTP facade is the other side's work.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.channels import aio_channel
from rc_common.migrations import migrate
from recharge_service.adapters.wechatpay_v3 import WechatPayV3Client
from recharge_service.bootstrap import App, build_app
from recharge_service.migrations import SCHEMA
from recharge_service.settings import (
    ConfirmSettings,
    DatabaseSettings,
    LimitSettings,
    NotifySettings,
    PaymentBackend,
    RechargeSettings,
    RemoteSettings,
    WechatPaySettings,
)
from tests import auth
from tests.auth import write_key_file
from tests.integration.recharge_service.conftest import MCHID, Wechat
from tests.integration.recharge_service.fakes import SUB_MCHID
from tests.integration.recharge_service.grpc_fakes import FakeCallbacks, FakeCardSystem, serving
from tests.integration.recharge_service.test_server import (
    as_domain,
    create_request,
    open_merchant,
    wait_for_status,
)
from tests.integration.recharge_service.test_wechatpay_v3 import FakeWechatPay, Keys
from tests.integration.recharge_service.test_wechatpay_v3 import serving as serving_http
from wechat_mock.adapters.keys import PlatformKeys

NOTIFY_URL = "https://recharge.example.com/wechatpay/notify"


@dataclass
class Running:
    app: App
    center: recharge_pb2_grpc.RechargeCenterStub
    card: FakeCardSystem
    wechat: FakeWechatPay
    notify_url: str


@pytest.fixture
async def running(tmp_path: Path, platform_keys: tuple[Path, PlatformKeys]) -> AsyncIterator[Running]:
    bundle, provider = platform_keys
    card, pos, wechat = (
        FakeCardSystem(),
        FakeCallbacks(),
        FakeWechatPay(Keys(bundle, provider, bundle, provider)),
    )
    async with serving(card) as card_server, serving(pos) as unused_wechat, serving_http(wechat) as base_url:
        settings = RechargeSettings(
            listen="127.0.0.1:0",
            auth_key_file=write_key_file(tmp_path),
            grace=1.0,
            database=DatabaseSettings(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"),
            remote=RemoteSettings(
                card_target=card_server.address,
                payment_target=unused_wechat.address,  # the gRPC wire is not used
                attempts=2,
                deadline=10.0,
                backoff=0.01,
            ),
            confirm=ConfirmSettings(backoff=0.01, deadline=10.0),
            notify=NotifySettings(wechat_keys_dir=str(bundle), wechat_mchid=MCHID, http_listen="127.0.0.1:0"),
            wechatpay=WechatPaySettings(
                backend=PaymentBackend.WECHATPAY_V3,
                base_url=base_url,
                sp_appid="wxsp000000000001",
                notify_url=NOTIFY_URL,
            ),
            limits=LimitSettings(max_open_orders_per_card=0),
        )
        settings.wechatpay.validate()
        await migrate(settings.database.url, SCHEMA)
        app = await build_app(settings)
        assert isinstance(app.deps.payments, WechatPayV3Client)
        assert app.notify_http is not None
        await app.server.start()
        await app.start_http()
        try:
            async with aio_channel(app.server.address, auth.client()) as channel:
                await open_merchant(recharge_pb2_grpc.RechargeOpsStub(channel))
                yield Running(
                    app,
                    recharge_pb2_grpc.RechargeCenterStub(channel),
                    card,
                    wechat,
                    f"http://127.0.0.1:{app.notify_http.port}/wechatpay/notify",
                )
        finally:
            await app.server.stop(1.0)


async def test_create_pay_notify_over_http_credited(running: Running, wechat: Wechat) -> None:
    created = await running.center.CreateRechargeOrder(create_request())
    assert created.status == recharge_pb2.ORDER_STATUS_AWAITING_PAYMENT
    assert created.prepay_id == "wx201410272009395522657a690389285100"  # the fake's answer
    (prepay,) = [seen for seen in running.wechat.seen if seen.path_qs.endswith("/jsapi")]
    assert prepay.mchid == MCHID  # signed by the provider (partner mode)
    assert (prepay.body["sub_mchid"], prepay.body["out_trade_no"], prepay.body["notify_url"]) == (
        SUB_MCHID,
        created.order_no,
        NOTIFY_URL,
    )
    headers, body = wechat.paid(as_domain(created))
    async with httpx.AsyncClient(trust_env=False, timeout=30.0) as http:
        answer = await http.post(running.notify_url, headers=headers, content=body)
    assert (answer.status_code, answer.content) == (204, b"")
    await wait_for_status(running, created.order_no, recharge_pb2.ORDER_STATUS_CREDITED, within=30.0)


async def test_a_refused_confirm_refunds_over_http(running: Running, wechat: Wechat) -> None:
    running.card.script("ConfirmRecharge", ("refuse", "CARD_FROZEN"))
    created = await running.center.CreateRechargeOrder(create_request("pos-refund"))
    headers, body = wechat.paid(as_domain(created))
    async with httpx.AsyncClient(trust_env=False, timeout=30.0) as http:
        answer = await http.post(running.notify_url, headers=headers, content=body)
    assert answer.status_code == 204
    await wait_for_status(running, created.order_no, recharge_pb2.ORDER_STATUS_REFUNDING, within=30.0)
    (refund,) = [seen for seen in running.wechat.seen if seen.path_qs == "/v3/refund/domestic/refunds"]
    assert refund.mchid == MCHID
    assert (refund.body["sub_mchid"], refund.body["out_trade_no"]) == (SUB_MCHID, created.order_no)
    assert refund.body["amount"] == {"refund": 50_000, "total": 50_000, "currency": "CNY"}


async def test_a_lost_notification_is_recovered_by_the_sentinels_query_over_http(running: Running) -> None:
    created = await running.center.CreateRechargeOrder(create_request("pos-lost"))
    # WeChat's notification never arrives; the sentinel asks (GET …/out-trade-no/{no}): SUCCESS.
    running.wechat.script(
        f"GET /v3/pay/partner/transactions/out-trade-no/{created.order_no}",
        (
            200,
            {
                "out_trade_no": created.order_no,
                "transaction_id": "4200000001202611301234500001",
                "trade_state": "SUCCESS",
                "success_time": "2026-11-30T12:00:05+08:00",
                "amount": {"total": 50_000, "payer_total": 50_000, "currency": "CNY"},
            },
        ),
    )
    await running.app.sentinel.run(ignore_hold=True)
    credited = await wait_for_status(
        running, created.order_no, recharge_pb2.ORDER_STATUS_CREDITED, within=30.0
    )
    assert credited.transaction_id == "4200000001202611301234500001"
    asked = [s for s in running.wechat.seen if s.method == "GET" and created.order_no in s.path_qs]
    assert asked and asked[0].path_qs.endswith(f"?sp_mchid={MCHID}&sub_mchid={SUB_MCHID}")
