"""The sentinel's schedule inside a real server (fake card and WeChat servers on port 0): the job
runs every --sentinel-interval without anyone asking, RunSentinel answers a report, and stopping
the server stops the schedule even while a run is waiting on the card system."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.channels import aio_channel
from rc_common.migrations import migrate
from recharge_service.bootstrap import App, build_app
from recharge_service.migrations import SCHEMA
from recharge_service.settings import (
    ConfirmSettings,
    DatabaseSettings,
    NotifySettings,
    RechargeSettings,
    RemoteSettings,
    SentinelSettings,
)
from tests import auth
from tests.auth import write_key_file
from tests.integration.recharge_service.conftest import Wechat
from tests.integration.recharge_service.grpc_fakes import FakeCardSystem, FakeMessages, FakeWechat, serving
from tests.integration.recharge_service.test_server import (
    as_domain,
    create_request,
    open_merchant,
    wait_for_status,
)
from tests.waiting import eventually
from wechat_mock.adapters.keys import PlatformKeys


class Running:
    def __init__(self, app: App, channel: grpc.aio.Channel, card: FakeCardSystem) -> None:
        self.app = app
        self.card = card
        self.center = recharge_pb2_grpc.RechargeCenterStub(channel)
        self.ops = recharge_pb2_grpc.RechargeOpsStub(channel)
        self.notify = wechatpay_pb2_grpc.PaymentNotificationsStub(channel)


@pytest.fixture
async def running(tmp_path: Path, platform_keys: tuple[Path, PlatformKeys]) -> AsyncIterator[Running]:
    card, wechat, messages = FakeCardSystem(), FakeWechat(), FakeMessages()
    async with serving(card) as card_server, serving(wechat, messages) as wechat_server:
        settings = RechargeSettings(
            listen="127.0.0.1:0",
            grace=0.5,
            auth_key_file=write_key_file(tmp_path),
            database=DatabaseSettings(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"),
            remote=RemoteSettings(
                card_target=card_server.address,
                payment_target=wechat_server.address,
                attempts=1,
                deadline=0.3,
            ),
            confirm=ConfirmSettings(attempts=1, deadline=0.3),
            notify=NotifySettings(wechat_keys_dir=str(platform_keys[0])),
            sentinel=SentinelSettings(interval=0.2, hold=0.0),
        )
        await migrate(settings.database.url, SCHEMA)  # the step before every start
        app = await build_app(settings)
        await app.server.start()
        app.start_background()
        try:
            async with aio_channel(app.server.address, auth.client()) as channel:
                running = Running(app, channel, card)
                await open_merchant(running.ops)
                yield running
        finally:
            await app.server.stop(0.5)


async def credit_unknown(running: Running, wechat: Wechat, key: str) -> str:
    order = await running.center.CreateRechargeOrder(create_request(key))
    running.card.script("ConfirmRecharge", "unavailable")
    headers, body = wechat.paid(as_domain(order))
    await running.notify.Notify(wechatpay_pb2.NotifyRequest(headers=headers, body=body))
    return str(order.order_no)


async def test_the_scheduled_sentinel_credits_a_credit_unknown_order_without_being_asked(
    running: Running, wechat: Wechat
) -> None:
    order_no = await credit_unknown(running, wechat, "job-1")
    await wait_for_status(running, order_no, recharge_pb2.ORDER_STATUS_CREDITED)
    request = recharge_pb2.GetOrderTimelineRequest(order_no=order_no)

    async def visited() -> recharge_pb2.GetOrderTimelineResponse | None:
        timeline = await running.ops.GetOrderTimeline(request)
        visits = [e for e in timeline.events if (e.kind, e.actor) == ("sentinel_visit", "sentinel")]
        return timeline if visits else None

    # the visit's row is written with its run's batch, after the credit
    timeline = await eventually(visited, what=f"the sentinel's visit row for {order_no}")
    assert [e.actor for e in timeline.events if e.method.endswith("GetRecharge")] == ["sentinel"]


async def test_run_sentinel_over_grpc_answers_a_report(running: Running) -> None:
    report = await running.ops.RunSentinel(recharge_pb2.RunSentinelRequest(ignore_hold=True))
    assert report.examined == 0 and report.duration_ms >= 0


async def test_stopping_the_server_stops_the_schedule_and_cancels_a_run_in_progress(
    running: Running, wechat: Wechat
) -> None:
    running.card.script("GetRecharge", "hang", "hang", "hang")  # the next run waits on the card system
    await credit_unknown(running, wechat, "job-2")
    await eventually(lambda: bool(running.card.of("GetRecharge")))
    assert running.app.sentinel.running
    async with asyncio.timeout(10):  # a hang here is the failure
        await running.app.server.stop(0.2)
    assert running.app.sentinel_job._scheduler is None and not running.app.sentinel.running
    calls = len(running.card.of("GetRecharge"))
    await asyncio.sleep(0.5)  # time must pass: over two sentinel intervals (0.2 s), when a live job would run
    assert len(running.card.of("GetRecharge")) == calls  # nothing runs any more
