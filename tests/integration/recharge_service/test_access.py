"""Who may call the recharge center (findings A1 and A2 of issue 14), on a real server (port 0) in
development mode: plaintext on loopback, the token key from ``--auth-key-file``.

A1: anyone who could reach the port refunded an order under any name. A2: anyone listed every
customer's orders and ran the sentinel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from structlog.testing import capture_logs

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.auth import OPERATOR, VIEWER, issue_token
from rc_common.channels import ClientAuth, aio_channel
from rc_common.grpc_status import error_reason
from rc_common.migrations import migrate
from recharge_service.bootstrap import App, build_app
from recharge_service.migrations import SCHEMA
from recharge_service.settings import DatabaseSettings, NotifySettings, RechargeSettings, RemoteSettings
from tests import auth
from tests.integration.recharge_service.conftest import MCHID
from tests.integration.recharge_service.grpc_fakes import FakeCardSystem, FakeMessages, FakeWechat, serving
from tests.integration.recharge_service.test_server import create_request, get_request, open_merchant
from wechat_mock.adapters.keys import PlatformKeys

REFUND = recharge_pb2.RESOLVE_ACTION_REFUND
SENTINEL_NOW = recharge_pb2.RunSentinelRequest(ignore_hold=True)


@dataclass
class Served:
    app: App
    address: str

    def ops(self, channel: grpc.aio.Channel) -> recharge_pb2_grpc.RechargeOpsStub:
        return recharge_pb2_grpc.RechargeOpsStub(channel)

    def center(self, channel: grpc.aio.Channel) -> recharge_pb2_grpc.RechargeCenterStub:
        return recharge_pb2_grpc.RechargeCenterStub(channel)

    def refusals(self, method: str) -> dict[tuple[str, str], int]:
        counted = self.app.server.access.refusals.items()
        return {(code, reason): n for (m, code, reason), n in counted if m == method}


@pytest.fixture
async def served(tmp_path: Path, platform_keys: tuple[Path, PlatformKeys]) -> AsyncIterator[Served]:
    card, wechat, messages = FakeCardSystem(), FakeWechat(), FakeMessages()
    async with serving(card) as card_server, serving(wechat, messages) as wechat_server:
        settings = RechargeSettings(
            listen="127.0.0.1:0",
            grace=0.5,
            auth_key_file=auth.write_key_file(tmp_path),
            database=DatabaseSettings(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"),
            remote=RemoteSettings(
                card_target=card_server.address,
                payment_target=wechat_server.address,
                attempts=1,
                deadline=0.5,
            ),
            notify=NotifySettings(wechat_keys_dir=str(platform_keys[0]), wechat_mchid=MCHID),
        )
        await migrate(settings.database.url, SCHEMA)
        app = await build_app(settings)
        await app.server.start()
        try:
            async with aio_channel(app.server.address, auth.client([OPERATOR])) as channel:
                await open_merchant(recharge_pb2_grpc.RechargeOpsStub(channel))
            yield Served(app, app.server.address)
        finally:
            await app.server.stop(0.5)


def resolve_request(order_no: str) -> recharge_pb2.ResolveAnomalyRequest:
    return recharge_pb2.ResolveAnomalyRequest(
        order_no=order_no, action=REFUND, operator="mallory", reason="give me my money"
    )


async def test_a1_refund_needs_an_operator_token_and_the_timeline_names_its_subject(served: Served) -> None:
    async with aio_channel(served.address) as anonymous:
        order = await served.center(anonymous).CreateRechargeOrder(create_request("a1"), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await served.ops(anonymous).ResolveAnomaly(resolve_request(order.order_no), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_reason(refused.value) == "AUTHENTICATION_REQUIRED"
        unchanged = await served.center(anonymous).GetRechargeOrder(get_request(order.order_no), timeout=10)
    assert (unchanged.status, unchanged.version) == (order.status, order.version)

    async with aio_channel(served.address, auth.client([VIEWER], subject="victor")) as viewer:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await served.ops(viewer).ResolveAnomaly(resolve_request(order.order_no), timeout=10)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_reason(denied.value) == "ROLE_REQUIRED"
        timeline = await served.ops(viewer).GetOrderTimeline(
            recharge_pb2.GetOrderTimelineRequest(order_no=order.order_no), timeout=10
        )  # a viewer reads
    assert not [e for e in timeline.events if e.kind == "operator_action"]

    async with aio_channel(served.address, auth.client([OPERATOR], subject="carol")) as operator:
        with pytest.raises(grpc.aio.AioRpcError) as unpaid:  # allowed; the business answer is no
            await served.ops(operator).ResolveAnomaly(resolve_request(order.order_no), timeout=10)
        assert unpaid.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        timeline = await served.ops(operator).GetOrderTimeline(
            recharge_pb2.GetOrderTimelineRequest(order_no=order.order_no), timeout=10
        )
    actions = [e for e in timeline.events if e.kind == "operator_action"]
    assert actions and {e.actor for e in actions} == {"carol"}  # the token's subject, not "mallory"
    assert all("mallory" not in e.actor for e in timeline.events)

    counted = served.refusals("/recharge.v1.RechargeOps/ResolveAnomaly")
    assert counted == {
        ("UNAUTHENTICATED", "AUTHENTICATION_REQUIRED"): 1,
        ("PERMISSION_DENIED", "ROLE_REQUIRED"): 1,
    }


async def refused_anonymously(served: Served) -> None:
    """A2's reproducer: an anonymous client lists orders, runs the sentinel 4x in parallel, lists
    anomalies; every call must be refused."""
    async with aio_channel(served.address) as anonymous:
        await served.center(anonymous).CreateRechargeOrder(create_request("a2"), timeout=10)
        calls = [
            served.center(anonymous).ListRechargeOrders(recharge_pb2.ListRechargeOrdersRequest(), timeout=10),
            *(served.ops(anonymous).RunSentinel(SENTINEL_NOW, timeout=10) for _ in range(4)),
            served.ops(anonymous).ListAnomalies(recharge_pb2.ListAnomaliesRequest(), timeout=10),
        ]
        answers = await asyncio.gather(*calls, return_exceptions=True)
    for answer in answers:
        assert isinstance(answer, grpc.aio.AioRpcError), answer
        assert answer.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a2_anonymous_callers_neither_list_orders_nor_run_the_sentinel(served: Served) -> None:
    with capture_logs() as events:
        await refused_anonymously(served)
    refused = [e for e in events if e["event"] == "call_refused"]
    assert sorted(e["method"].rpartition("/")[2] for e in refused) == [
        "ListAnomalies", "ListRechargeOrders", *["RunSentinel"] * 4
    ]
    assert {(e["code"], e["reason"], e["caller"]) for e in refused} == {
        ("UNAUTHENTICATED", "AUTHENTICATION_REQUIRED", "anonymous")
    }
    assert served.refusals("/recharge.v1.RechargeOps/RunSentinel") == {
        ("UNAUTHENTICATED", "AUTHENTICATION_REQUIRED"): 4
    }

    async with aio_channel(served.address, auth.client([VIEWER])) as viewer:
        listed = await served.center(viewer).ListRechargeOrders(
            recharge_pb2.ListRechargeOrdersRequest(merchant_id="shop-a"), timeout=10
        )
        assert [o.idempotency_key for o in listed.orders] == ["a2"]
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await served.ops(viewer).RunSentinel(SENTINEL_NOW, timeout=10)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (issue_token(auth.KEY, "carol", [OPERATOR], ttl=1, now=1_000_000.0), "TOKEN_EXPIRED"),
        (issue_token(bytes(32), "carol", [OPERATOR], ttl=3600), "TOKEN_INVALID"),  # another key
        ("not-a-token", "TOKEN_INVALID"),
    ],
)
async def test_a_bad_token_is_unauthenticated_even_for_a_customer_call_it_did_not_need(
    served: Served, token: str, reason: str
) -> None:
    async with aio_channel(served.address, ClientAuth(token=token)) as channel:
        for call in (
            served.ops(channel).ListAnomalies(recharge_pb2.ListAnomaliesRequest(), timeout=10),
            served.center(channel).GetRechargeOrder(get_request("R-none"), timeout=10),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert error_reason(refused.value) == reason


async def test_the_customer_facing_calls_stay_open_to_anonymous_loopback_callers(served: Served) -> None:
    async with aio_channel(served.address) as anonymous:
        order = await served.center(anonymous).CreateRechargeOrder(create_request("open"), timeout=10)
        got = await served.center(anonymous).GetRechargeOrder(get_request(order.order_no), timeout=10)
    assert got.order_no == order.order_no
    assert served.app.server.access.refusals == {}
