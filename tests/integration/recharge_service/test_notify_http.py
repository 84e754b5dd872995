"""The HTTP notification endpoint: the same service-layer code as the gRPC Notify, answered WeChat's
way — 204 with no body once recorded; 4xx/5xx with {"code": "FAIL", "message": …} and nothing
changed otherwise; bodies over the cap refused unread; TLS, or plaintext on loopback only."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from rc_common import wechatpay_crypto as crypto
from rc_common.db import Database
from rc_common.settings import InvalidSetting
from rc_common.tls import TlsConfigError
from recharge_service.adapters.orm import outbox, payments
from recharge_service.adapters.wechat_notifications import NotificationOpener
from recharge_service.domain.order import OrderStatus
from recharge_service.entrypoints import notify_http
from recharge_service.entrypoints.notify_http import NotifyHttpPolicy, NotifyHttpServer
from recharge_service.service_layer.deps import Deps
from recharge_service.settings import NotifySettings
from scripts.certs import make_certs
from tests.integration.recharge_service.conftest import Wechat, new_order, reload
from tests.integration.recharge_service.fakes import FakeCard

POLICY = NotifyHttpPolicy(path="/wechatpay/notify", max_body=8192, read_timeout=10.0)


async def snapshot(deps: Deps, db: Database, order_no: str) -> tuple[Any, ...]:
    """Everything a notification could change."""
    async with db.session(readonly=True) as session:
        paid = (await session.execute(select(func.count()).select_from(payments))).scalar_one()
        queued = (await session.execute(select(func.count()).select_from(outbox))).scalar_one()
    order = await reload(deps, order_no)
    return (order.status, order.version, order.transaction_id, paid, queued)


def forged(headers: dict[str, str]) -> dict[str, str]:
    raw = bytearray(base64.b64decode(headers[crypto.HEADER_SIGNATURE]))
    raw[10] ^= 0xFF
    return {**headers, crypto.HEADER_SIGNATURE: base64.b64encode(bytes(raw)).decode()}


@pytest.fixture
async def endpoint(deps: Deps, opener: NotificationOpener) -> AsyncIterator[str]:
    server = NotifyHttpServer(deps, opener, "127.0.0.1:0", POLICY)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}{POLICY.path}"
    finally:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
        yield client


async def test_a_genuine_notification_is_recorded_and_answered_204_with_no_body(
    deps: Deps, db: Database, wechat: Wechat, card: FakeCard, endpoint: str, http: httpx.AsyncClient
) -> None:
    order = await new_order(deps)
    headers, body = wechat.paid(order)
    response = await http.post(
        endpoint, headers={**headers, "Content-Type": "application/json"}, content=body
    )
    assert (response.status_code, response.content) == (204, b"")
    stored = await reload(deps, order.order_no)  # PAID is durable before the answer
    assert stored.status in (OrderStatus.PAID, OrderStatus.CREDITED)
    assert stored.transaction_id == f"4200{order.order_no[-10:]}"
    await deps.background.join()
    assert (await reload(deps, order.order_no)).status is OrderStatus.CREDITED
    after = await snapshot(deps, db, order.order_no)

    again = await http.post(endpoint, headers=headers, content=body)  # WeChat's repeat
    assert again.status_code == 204
    await deps.background.join()
    assert await snapshot(deps, db, order.order_no) == after
    assert card.methods().count("ConfirmRecharge") == 1


@pytest.mark.parametrize("case", ["forged signature", "tampered body", "no signature", "not json"])
async def test_a_bad_notification_is_answered_4xx_fail_and_changes_nothing(
    deps: Deps,
    db: Database,
    wechat: Wechat,
    card: FakeCard,
    endpoint: str,
    http: httpx.AsyncClient,
    case: str,
) -> None:
    order = await new_order(deps)
    before = await snapshot(deps, db, order.order_no)
    headers, body = wechat.paid(order)
    if case == "forged signature":
        headers = forged(headers)
    elif case == "tampered body":
        body = body.replace(b'"summary":"', b'"summary":"x')
    elif case == "no signature":
        headers = {k: v for k, v in headers.items() if k != crypto.HEADER_SIGNATURE}
    else:
        body = b"not json at all"
        headers = wechat.headers(body)
    response = await http.post(endpoint, headers=headers, content=body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert answer["code"] == "FAIL" and answer["message"]
    assert await snapshot(deps, db, order.order_no) == before
    assert "ConfirmRecharge" not in card.methods()


async def test_an_oversized_body_is_refused_unread(
    deps: Deps, db: Database, wechat: Wechat, endpoint: str, http: httpx.AsyncClient
) -> None:
    order = await new_order(deps)
    before = await snapshot(deps, db, order.order_no)
    headers, body = wechat.paid(order)
    padded = body[:-1] + b',"pad":"' + b"x" * POLICY.max_body + b'"}'
    signed = wechat.headers(padded)  # even a genuine signature does not get a large body read

    response = await http.post(endpoint, headers=signed, content=padded)
    assert response.status_code == 413
    assert response.json()["code"] == "FAIL"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(padded), 1024):
            yield padded[start : start + 1024]

    chunked = await http.post(endpoint, headers=signed, content=chunks())
    assert chunked.status_code == 413
    assert chunked.json()["code"] == "FAIL"
    assert await snapshot(deps, db, order.order_no) == before

    fine = await http.post(endpoint, headers=headers, content=body)  # the endpoint still serves
    assert fine.status_code == 204


async def test_a_notification_that_cannot_be_recorded_is_answered_500_fail(
    deps: Deps,
    db: Database,
    wechat: Wechat,
    endpoint: str,
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = await new_order(deps)
    before = await snapshot(deps, db, order.order_no)

    def broken(_conn: object, *_args: object, **_kwargs: object) -> int:
        raise OperationalError("INSERT INTO payments", {}, Exception("disk I/O error"))

    monkeypatch.setattr("recharge_service.adapters.repository.insert_or_ignore", broken)
    headers, body = wechat.paid(order)
    response = await http.post(endpoint, headers=headers, content=body)
    assert response.status_code == 500
    assert response.json()["code"] == "FAIL"
    monkeypatch.undo()
    assert await snapshot(deps, db, order.order_no) == before
    retried = await http.post(endpoint, headers=headers, content=body)  # WeChat delivers it again
    assert retried.status_code == 204


async def test_other_methods_and_paths_are_not_notifications(endpoint: str, http: httpx.AsyncClient) -> None:
    got = await http.get(endpoint)
    assert got.status_code == 405 and got.json()["code"] == "FAIL"
    elsewhere = await http.post(endpoint.replace("/wechatpay/notify", "/other"), content=b"{}")
    assert elsewhere.status_code == 404


async def test_tls_serves_https_and_plaintext_is_loopback_only(
    deps: Deps, opener: NotificationOpener, wechat: Wechat, tmp_path: Path
) -> None:
    with pytest.raises(TlsConfigError):
        NotifyHttpServer(deps, opener, "0.0.0.0:0", POLICY)
    with pytest.raises(InvalidSetting):
        NotifySettings(http_listen="0.0.0.0:8443").validate()
    NotifySettings(http_listen="0.0.0.0:8443", http_tls_dir=str(tmp_path)).validate()

    make_certs(tmp_path, ["recharge"])
    server = NotifyHttpServer(deps, opener, "127.0.0.1:0", POLICY, tls_dir=str(tmp_path / "recharge"))
    await server.start()
    try:
        order = await new_order(deps)
        headers, body = wechat.paid(order)
        url = f"https://127.0.0.1:{server.port}{POLICY.path}"
        ca = str(tmp_path / "recharge" / "ca.crt")
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca), trust_env=False) as client:
            response = await client.post(url, headers=headers, content=body)
        assert response.status_code == 204
        async with httpx.AsyncClient(trust_env=False) as untrusting:  # system trust: not our test CA
            with pytest.raises(httpx.ConnectError):
                await untrusting.post(url, headers=headers, content=body)
    finally:
        await server.stop()
    await deps.background.join()
    assert (await reload(deps, order.order_no)).status is OrderStatus.CREDITED


async def test_a_burst_beyond_the_admission_limit_is_shed_503_fail(
    deps: Deps, opener: NotificationOpener, wechat: Wechat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One handled at a time, none waiting: the second is answered at once, not queued."""
    entered, release = asyncio.Event(), asyncio.Event()
    real = notify_http.handle_notification

    async def slow(*args: Any) -> Any:
        entered.set()
        await release.wait()
        return await real(*args)

    monkeypatch.setattr(notify_http, "handle_notification", slow)
    policy = NotifyHttpPolicy(
        path=POLICY.path, max_body=POLICY.max_body, concurrent=1, queued=0, queue_wait=5.0
    )
    server = NotifyHttpServer(deps, opener, "127.0.0.1:0", policy)
    await server.start()
    try:
        order = await new_order(deps)
        headers, body = wechat.paid(order)
        url = f"http://127.0.0.1:{server.port}{POLICY.path}"
        async with httpx.AsyncClient(timeout=30.0, trust_env=False) as http:
            first = asyncio.create_task(http.post(url, headers=headers, content=body))
            await entered.wait()
            shed = await http.post(url, headers=headers, content=body)
            assert shed.status_code == 503
            assert shed.json()["code"] == "FAIL" and "OVERLOADED" in shed.json()["message"]
            release.set()
            assert (await first).status_code == 204
            again = await http.post(url, headers=headers, content=body)  # room again
            assert again.status_code == 204
    finally:
        release.set()
        await server.stop()


async def test_a_body_that_does_not_arrive_in_time_is_answered_408_fail(
    deps: Deps, opener: NotificationOpener
) -> None:
    policy = NotifyHttpPolicy(path=POLICY.path, max_body=POLICY.max_body, read_timeout=0.2)
    server = NotifyHttpServer(deps, opener, "127.0.0.1:0", policy)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            f"POST {POLICY.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n{".encode()
        )  # 1 of 100 bytes, then nothing
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
        assert head.startswith(b"HTTP/1.1 408")
        writer.close()
    finally:
        await server.stop()
