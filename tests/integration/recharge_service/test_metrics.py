"""``/metrics`` of a running recharge center (``--metrics-listen 127.0.0.1:0``) in front of fake
card and WeChat servers: counts move with the calls, labels name them, the database gauges come
from one cached query."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.channels import aio_channel
from rc_common.migrations import migrate
from recharge_service.adapters.order_gauges import OrderGauges
from recharge_service.bootstrap import App, build_app
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
from tests.integration.recharge_service.conftest import MCHID, Wechat
from tests.integration.recharge_service.grpc_fakes import FakeCardSystem, FakeMessages, FakeWechat, serving
from tests.integration.recharge_service.test_server import (
    as_domain,
    create_request,
    open_merchant,
    wait_for_status,
)
from tests.waiting import eventually
from wechat_mock.adapters.keys import PlatformKeys

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
CREATE = "/recharge.v1.RechargeCenter/CreateRechargeOrder"


@dataclass
class Center:
    app: App
    center: recharge_pb2_grpc.RechargeCenterStub
    notify: wechatpay_pb2_grpc.PaymentNotificationsStub
    card: FakeCardSystem


@pytest.fixture
async def running(tmp_path: Path, platform_keys: tuple[Path, PlatformKeys]) -> AsyncIterator[Center]:
    card, wechat, messages = FakeCardSystem(), FakeWechat(), FakeMessages()
    async with serving(card) as card_server, serving(wechat, messages) as wechat_server:
        settings = RechargeSettings(
            listen="127.0.0.1:0",
            metrics_listen="127.0.0.1:0",
            metrics_cache=3600.0,  # one read for the whole test unless a test builds its own gauges
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
            confirm=ConfirmSettings(attempts=2, backoff=0.01, deadline=0.5),
            notify=NotifySettings(wechat_keys_dir=str(platform_keys[0]), wechat_mchid=MCHID),
            outbox=OutboxSettings(interval=0.05, backoff=0.01, backoff_max=0.05),
            limits=LimitSettings(max_open_orders_per_card=0),
        )
        await migrate(settings.database.url, SCHEMA)
        app = await build_app(settings)
        await app.server.start()
        await app.start_http()
        app.dispatcher.start()
        async with aio_channel(app.server.address, auth.client()) as channel:
            ops = recharge_pb2_grpc.RechargeOpsStub(channel)
            await open_merchant(ops)
            yield Center(
                app,
                recharge_pb2_grpc.RechargeCenterStub(channel),
                wechatpay_pb2_grpc.PaymentNotificationsStub(channel),
                card,
            )
        await app.server.stop(1.0)


async def scrape(running: Center) -> Samples:
    assert running.app.metrics is not None
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"http://{running.app.metrics.address}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_a_top_up_and_refused_calls_move_the_counts_under_their_labels(
    running: Center, wechat: Wechat
) -> None:
    before = await scrape(running)
    created = await running.center.CreateRechargeOrder(create_request("metrics-1"))
    headers, body = wechat.paid(as_domain(created))
    ack = await running.notify.Notify(wechatpay_pb2.NotifyRequest(headers=headers, body=body))
    assert ack.code == "SUCCESS"
    await wait_for_status(running, created.order_no, recharge_pb2.ORDER_STATUS_CREDITED)
    forged = dict(headers, **{"Wechatpay-Signature": "Zm9yZ2Vk"})
    refused = await running.notify.Notify(wechatpay_pb2.NotifyRequest(headers=forged, body=body))
    assert refused.code == "FAIL"
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await running.center.CreateRechargeOrder(create_request("metrics-2", channel=0))
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    async with aio_channel(running.app.server.address) as anonymous:  # no operator token
        with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
            await recharge_pb2_grpc.RechargeOpsStub(anonymous).RunSentinel(recharge_pb2.RunSentinelRequest())
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED

    after = await scrape(running)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("rc_grpc_server_handled_total", grpc_method=CREATE, grpc_code="OK") == 1
    assert moved("rc_grpc_server_handled_total", grpc_method=CREATE, grpc_code="INVALID_ARGUMENT") == 1
    assert moved("rc_grpc_server_handling_seconds_count", grpc_method=CREATE) == 2
    card, pay = "card.v1.CardSystem", "wechatpay.v1.PaymentGateway"
    assert moved("rc_outgoing_calls_total", target=card, method="PreRecharge", outcome="done") == 1
    assert moved("rc_outgoing_calls_total", target=pay, method="CreatePrepay", outcome="done") == 1
    assert moved("rc_outgoing_calls_total", target=card, method="ConfirmRecharge", outcome="done") == 1
    assert moved("rc_outgoing_call_seconds_count", target=card, method="ConfirmRecharge") == 1
    run_sentinel = "/recharge.v1.RechargeOps/RunSentinel"
    assert (
        moved(
            "rc_calls_refused_total",
            grpc_method=run_sentinel,
            grpc_code="UNAUTHENTICATED",
            reason="AUTHENTICATION_REQUIRED",
        )
        == 1
    )
    assert moved("rc_grpc_server_handled_total", grpc_method=run_sentinel, grpc_code="UNAUTHENTICATED") == 0
    assert moved("rc_notifications_refused_total", reason="VERIFICATION_FAILED") == 1
    notice = {"target": "wechatpay.v1.MessageSimulator", "method": "SendTemplateMessage", "outcome": "done"}

    async def noticed() -> bool:
        return value(await scrape(running), "rc_outgoing_calls_total", **notice) > value(
            before, "rc_outgoing_calls_total", **notice
        )

    await eventually(noticed, what="the customer notice counted as an outgoing call")
    assert moved("rc_notifications_refused_total", reason="PAYMENT_REJECTED") == 0


async def test_an_order_stuck_in_credit_unknown_ages_while_finished_ones_do_not_count(
    running: Center, wechat: Wechat
) -> None:
    done = await running.center.CreateRechargeOrder(create_request("metrics-done"))
    headers, body = wechat.paid(as_domain(done))
    await running.notify.Notify(wechatpay_pb2.NotifyRequest(headers=headers, body=body))
    await wait_for_status(running, done.order_no, recharge_pb2.ORDER_STATUS_CREDITED)
    running.card.script("ConfirmRecharge", *["unavailable"] * 4)  # the credit's outcome stays unknown
    stuck = await running.center.CreateRechargeOrder(create_request("metrics-stuck"))
    headers, body = wechat.paid(as_domain(stuck))
    await running.notify.Notify(wechatpay_pb2.NotifyRequest(headers=headers, body=body))
    await wait_for_status(running, stuck.order_no, recharge_pb2.ORDER_STATUS_CREDIT_UNKNOWN)
    created_at = stuck.created_at.ToDatetime(tzinfo=UTC)
    now = [created_at + timedelta(hours=2)]
    gauges = OrderGauges(running.app.db, 0.0, lambda: now[0])

    await gauges.refresh()
    assert gauges.oldest_unfinished.collect()[0].samples[0].value == pytest.approx(7200, abs=0.001)
    assert gauges.oldest_review.collect()[0].samples[0].value == 0
    by_status = {s.labels["status"]: s.value for s in gauges.orders.collect()[0].samples}
    assert (by_status["CREDITED"], by_status["CREDIT_UNKNOWN"], by_status["MANUAL_REVIEW"]) == (1, 1, 0)
    now[0] += timedelta(hours=1)
    await gauges.refresh()
    assert gauges.oldest_unfinished.collect()[0].samples[0].value == pytest.approx(10800, abs=0.001)


async def test_many_scrapes_within_the_cache_period_read_the_database_once(running: Center) -> None:
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if "recharge_orders" in statement and "GROUP BY" in statement.upper():
            statements.append(statement)

    engine = running.app.db.sync_engine  # the engine reads go through (SQLite: its own)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        scrapes = [await scrape(running) for _ in range(5)]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 1
    assert all(value(s, "rc_orders", status="CREATED") == 0 for s in scrapes)
    assert all(("rc_outbox_backlog", frozenset()) in s for s in scrapes)
