"""The simulator's WeChat Pay APIv3 facade (``--http-listen``), proven with someone else's code:
WeChat's Python SDK ``wechatpayv3`` (platform public key mode) signs the requests and verifies the
answers' signatures itself, over HTTPS with the simulator's throwaway certificate trusted.

The SDK takes its base URL from ``Core._gate_way`` (an instance attribute, set here: no module
constant is patched). It is synchronous (``requests``), so its calls run in a thread while the
simulator serves on the test's event loop."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3 import WeChatPay, WeChatPayType

from rc_common import wechatpay_crypto as crypto
from rc_common.errors import InvalidArgument
from tests.integration.wechat_mock.conftest import Launcher, Running
from tests.integration.wechat_mock.fakes import SP_APPID, SP_MCHID, SUB_MCHID, rule
from wechat_mock.adapters import http_tls
from wechat_mock.adapters.keys import merchant_bundle_dir
from wechat_mock.domain import validation
from wechat_mock.domain.notifications import DeliveryStatus
from wechat_mock.entrypoints import http_api, http_requests
from wechat_mock.entrypoints.http_api import GATEWAY
from wechat_mock.settings import WechatSettings

DIRECT_MCHID = "1230000109"
DIRECT_APPID = "wx8888888888888888"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
#: How long a test waits for background work (notifications) before failing; never a timing claim.
PATIENCE_S = 20.0


@dataclass(frozen=True)
class Bundle:
    """What WeChat handed the merchant (``<keys-dir>/merchant[/direct/<mchid>]``)."""

    mchid: str
    private_key: str
    serial: str
    public_key: str
    public_key_id: str
    apiv3_key: str

    @classmethod
    def read(cls, directory: Path) -> Bundle:
        def text(name: str) -> str:
            return (directory / name).read_text().strip()

        return cls(
            mchid=text("mchid.txt"),
            private_key=(directory / "apiclient_key.pem").read_text(),
            serial=text("apiclient_serial.txt"),
            public_key=(directory / "platform_public_key.pem").read_text(),
            public_key_id=text("public_key_id.txt"),
            apiv3_key=text("apiv3_key.txt"),
        )


def _other_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _other_public_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@dataclass
class Facade:
    running: Running
    base_url: str
    ca_file: str
    keys_dir: Path

    def bundle(self, direct_mchid: str = "") -> Bundle:
        return Bundle.read(merchant_bundle_dir(self.keys_dir, direct_mchid))

    def sdk(
        self,
        *,
        partner: bool,
        notify_url: str = "https://127.0.0.1:9/notify",
        private_key: str | None = None,
        public_key: str | None = None,
    ) -> WeChatPay:
        bundle = self.bundle("" if partner else DIRECT_MCHID)
        pay = WeChatPay(
            wechatpay_type=WeChatPayType.JSAPI,
            mchid=bundle.mchid,
            private_key=private_key or bundle.private_key,
            cert_serial_no=bundle.serial,
            appid=SP_APPID if partner else DIRECT_APPID,
            apiv3_key=bundle.apiv3_key,
            notify_url=notify_url,
            partner_mode=partner,
            timeout=(5, 10),
            public_key=public_key or bundle.public_key,
            public_key_id=bundle.public_key_id,
        )
        pay._core._gate_way = self.base_url  # the facade instead of https://api.mch.weixin.qq.com
        return pay


@pytest.fixture
async def facade(launch: Launcher, keys_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Facade:
    running = await launch(http_listen="127.0.0.1:0", direct_merchants=f"{DIRECT_MCHID}:{DIRECT_APPID}")
    http, tls = running.simulator.http, running.simulator.http_tls
    assert http is not None and tls is not None and tls.throwaway
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.cert_file))  # the SDK (requests) trusts it
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert http.base_url.startswith("https://127.0.0.1:")
    return Facade(running, http.base_url, str(tls.cert_file), keys_dir)


async def call(function: Callable[..., tuple[int, Any]], *args: Any, **kwargs: Any) -> tuple[int, Any]:
    return await asyncio.to_thread(function, *args, **kwargs)


def _json(message: Any) -> dict[str, Any]:
    loaded = json.loads(message)
    assert isinstance(loaded, dict)
    return loaded


async def test_sdk_partner_mode_prepay_query_close_refund_query_refund_bill(facade: Facade) -> None:
    sdk = facade.sdk(partner=True)
    code, message = await call(
        sdk.pay,
        "储值卡充值",
        "HTTPSDK0001",
        {"total": 1000},
        payer={"sp_openid": OPENID},
        sub_mchid=SUB_MCHID,
    )
    assert code == 200, message
    assert _json(message)["prepay_id"].startswith("wx")

    code, message = await call(sdk.query, out_trade_no="HTTPSDK0001", sub_mchid=SUB_MCHID)
    assert code == 200, message
    doc = _json(message)
    assert (doc["trade_state"], doc["sp_mchid"], doc["sub_mchid"], doc["sp_appid"]) == (
        "NOTPAY",
        SP_MCHID,
        SUB_MCHID,
        SP_APPID,
    )
    assert doc["amount"]["total"] == 1000

    # close one: 204, then it is CLOSED and cannot be prepaid again (403 ORDER_CLOSED)
    code, _ = await call(
        sdk.pay, "储值卡充值", "HTTPSDK0002", {"total": 500}, payer={"sp_openid": OPENID}, sub_mchid=SUB_MCHID
    )
    assert code == 200
    code, message = await call(sdk.close, "HTTPSDK0002", sub_mchid=SUB_MCHID)
    assert code == 204, message
    code, message = await call(sdk.query, out_trade_no="HTTPSDK0002", sub_mchid=SUB_MCHID)
    assert (code, _json(message)["trade_state"]) == (200, "CLOSED")
    code, message = await call(
        sdk.pay, "储值卡充值", "HTTPSDK0002", {"total": 500}, payer={"sp_openid": OPENID}, sub_mchid=SUB_MCHID
    )
    assert (code, _json(message)["code"]) == (400, "ORDER_CLOSED")  # WeChat's status for it

    # pay the first through the payer simulator (gRPC), then query, refund and query the refund
    await facade.running.stubs.pay("HTTPSDK0001")
    code, message = await call(sdk.query, out_trade_no="HTTPSDK0001", sub_mchid=SUB_MCHID)
    doc = _json(message)
    assert (code, doc["trade_state"], doc["amount"]["payer_total"]) == (200, "SUCCESS", 1000)
    assert doc["transaction_id"] and doc["payer"] == {"sp_openid": OPENID}
    code, message = await call(sdk.close, "HTTPSDK0001", sub_mchid=SUB_MCHID)
    assert (code, _json(message)["code"]) == (403, "ORDER_PAID")

    refund = {"refund": 400, "total": 1000, "currency": "CNY"}
    code, message = await call(
        sdk.refund, "HTTPSDK0001-R1", refund, out_trade_no="HTTPSDK0001", reason="退款", sub_mchid=SUB_MCHID
    )
    assert code == 200, message
    doc = _json(message)
    assert (doc["status"], doc["amount"]["refund"], doc["out_trade_no"]) == ("PROCESSING", 400, "HTTPSDK0001")
    code, message = await call(
        sdk.refund,
        "HTTPSDK0001-R2",
        {"refund": 700, "total": 1000, "currency": "CNY"},
        out_trade_no="HTTPSDK0001",
        sub_mchid=SUB_MCHID,
    )
    assert (code, _json(message)["code"]) == (403, "NOT_ENOUGH")
    code, message = await call(sdk.query_refund, "HTTPSDK0001-R1", sub_mchid=SUB_MCHID)
    assert code == 200, message
    assert _json(message)["refund_id"] == doc["refund_id"]
    code, message = await call(sdk.query_refund, "NO-SUCH-REFUND", sub_mchid=SUB_MCHID)
    assert (code, _json(message)["code"]) == (404, "RESOURCE_NOT_EXISTS")
    code, message = await call(sdk.query, out_trade_no="HTTPSDK9999", sub_mchid=SUB_MCHID)
    assert (code, _json(message)["code"]) == (404, "ORDER_NOT_EXIST")

    # the trade bill of today (Shanghai): its hash matches the (gunzipped) file the URL serves
    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
    code, message = await call(sdk.trade_bill, today, sub_mchid=SUB_MCHID)
    assert code == 200, message
    bill = _json(message)
    code, content = await call(sdk.download_bill, bill["download_url"])
    assert code == 200
    text = gzip.decompress(content)
    assert hashlib.sha1(text).hexdigest() == bill["hash_value"]
    assert "`HTTPSDK0001" in text.decode() and "`HTTPSDK0001-R1" in text.decode()
    assert "`10.00" in text.decode()  # 1000 fen, printed in yuan


async def test_sdk_direct_mode_with_the_merchants_own_keys(facade: Facade) -> None:
    sdk = facade.sdk(partner=False)
    code, message = await call(sdk.pay, "储值卡充值", "HTTPDIR0001", {"total": 100}, payer={"openid": OPENID})
    assert code == 200, message
    code, message = await call(sdk.query, out_trade_no="HTTPDIR0001")
    doc = _json(message)
    assert (code, doc["mchid"], doc["appid"], doc["trade_state"]) == (
        200,
        DIRECT_MCHID,
        DIRECT_APPID,
        "NOTPAY",
    )
    # the direct merchant's answers are signed with its own platform key: the provider's does not verify
    wrong = facade.sdk(partner=False, public_key=facade.bundle().public_key)
    with pytest.raises(Exception, match="failed to verify the signature"):
        await call(wrong.query, out_trade_no="HTTPDIR0001")
    # the provider's sub-merchant cannot see a direct merchant's trade (and vice versa)
    partner = facade.sdk(partner=True)
    code, message = await call(partner.query, out_trade_no="HTTPDIR0001", sub_mchid=SUB_MCHID)
    assert (code, _json(message)["code"]) == (404, "ORDER_NOT_EXIST")
    code, _ = await call(sdk.close, "HTTPDIR0001")
    assert code == 204
    code, _ = await call(sdk.pay, "储值卡充值", "HTTPDIR0002", {"total": 300}, payer={"openid": OPENID})
    assert code == 200
    await facade.running.stubs.pay("HTTPDIR0002")
    amount = {"refund": 300, "total": 300, "currency": "CNY"}
    code, message = await call(sdk.refund, "HTTPDIR0002-R1", amount, out_trade_no="HTTPDIR0002")
    assert (code, _json(message)["status"]) == (200, "PROCESSING")
    assert "sub_mchid" not in _json(message)
    code, message = await call(sdk.query_refund, "HTTPDIR0002-R1")
    assert (code, _json(message)["out_trade_no"]) == (200, "HTTPDIR0002")
    code, message = await call(partner.query_refund, "HTTPDIR0002-R1", sub_mchid=SUB_MCHID)
    assert (code, _json(message)["code"]) == (404, "RESOURCE_NOT_EXISTS")  # not the provider's


async def test_sdk_refuses_an_answer_whose_signature_is_wrong(
    facade: Facade, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK verifies what the facade signs: another platform public key, or a signature made
    over other bytes than the body sent, and the SDK refuses the answer."""
    sdk = facade.sdk(partner=True)
    code, _ = await call(
        sdk.pay, "储值卡充值", "HTTPTAMP001", {"total": 100}, payer={"sp_openid": OPENID}, sub_mchid=SUB_MCHID
    )
    assert code == 200  # the SDK believes the facade's true signature
    stranger = facade.sdk(partner=True, public_key=_other_public_key())
    with pytest.raises(Exception, match="failed to verify the signature"):
        await call(stranger.query, out_trade_no="HTTPTAMP001", sub_mchid=SUB_MCHID)
    real = crypto.signed_headers

    def tampered(private_key_pem: Any, public_key_id: str, body: Any, **kwargs: Any) -> dict[str, str]:
        return real(private_key_pem, public_key_id, bytes(body) + b" ", **kwargs)

    monkeypatch.setattr(http_api.crypto, "signed_headers", tampered)
    with pytest.raises(Exception, match="failed to verify the signature"):
        await call(sdk.query, out_trade_no="HTTPTAMP001", sub_mchid=SUB_MCHID)


async def _signed_get(facade: Facade, path: str, authorization: str) -> httpx.Response:
    trust = ssl.create_default_context(cafile=facade.ca_file)
    async with httpx.AsyncClient(verify=trust, trust_env=False) as client:
        return await client.get(facade.base_url + path, headers={"Authorization": authorization})


async def test_a_request_not_signed_by_the_merchant_is_401_sign_error(facade: Facade) -> None:
    # the SDK with another private key (same mchid and serial)
    sdk = facade.sdk(partner=True, private_key=_other_private_key())
    code, message = await call(
        sdk.pay, "储值卡充值", "HTTPSIGN001", {"total": 100}, payer={"sp_openid": OPENID}, sub_mchid=SUB_MCHID
    )
    assert (code, _json(message)["code"]) == (401, "SIGN_ERROR")

    bundle = facade.bundle()
    path = f"/v3/pay/partner/transactions/out-trade-no/HTTPSIGN001?sp_mchid={SP_MCHID}&sub_mchid={SUB_MCHID}"
    now = int(time.time())

    def auth(**overrides: Any) -> str:
        values: dict[str, Any] = {
            "private_key_pem": bundle.private_key.encode(),
            "mchid": bundle.mchid,
            "serial_no": bundle.serial,
            "method": "GET",
            "path_with_query": path,
            "timestamp": now,
        }
        values.update(overrides)
        return crypto.authorization(**values)

    good = await _signed_get(facade, path, auth())
    assert good.status_code == 404  # signed right: the order is unknown (its prepay was refused)
    assert crypto.verify_headers(bundle.public_key, bundle.public_key_id, dict(good.headers), good.content)
    cases = {
        "no header": "",
        "other serial": auth(serial_no="0123456789ABCDEF"),
        "unknown mchid": auth(mchid="1900009999"),
        "stale timestamp": auth(timestamp=now - 301),
        "other path signed": auth(path_with_query=path.replace("HTTPSIGN001", "HTTPSIGN002")),
        "other method signed": auth(method="POST"),
    }
    for case, authorization in cases.items():
        response = await _signed_get(facade, path, authorization)
        assert response.status_code == 401, case
        assert response.json()["code"] == "SIGN_ERROR", case
        # even the refusal is signed (with the provider's platform key)
        assert crypto.verify_headers(
            bundle.public_key, bundle.public_key_id, dict(response.headers), response.content
        )


@dataclass
class Receiver:
    """A merchant's notification endpoint: answers ``answers`` in turn (then 204)."""

    answers: list[int]
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((dict(request.headers), await request.read()))
        status = self.answers.pop(0) if self.answers else 204
        if status >= 300:
            return web.json_response({"code": "FAIL", "message": "try again"}, status=status)
        return web.Response(status=status)


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[tuple[Receiver, str, str]]:
    """An HTTPS receiver with its own self-signed certificate: (receiver, url, its certificate)."""
    tls = http_tls.throwaway(tmp_path / "receiver")
    fake = Receiver(answers=[500])
    app = web.Application()
    app.router.add_post("/wechat/notify", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context())
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake, f"https://127.0.0.1:{port}/wechat/notify", str(tls.cert_file)
    finally:
        await runner.cleanup()


async def _until(predicate: Callable[[], Any]) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not await predicate():
        assert time.monotonic() < deadline, "gave up waiting"
        await asyncio.sleep(0.05)


async def test_notification_posted_over_https_to_notify_url_failed_then_retried(
    launch: Launcher,
    keys_dir: Path,
    receiver: tuple[Receiver, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url, ca_file = receiver
    running = await launch(http_listen="127.0.0.1:0", notify_ca_file=ca_file)
    assert running.simulator.http_tls is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(running.simulator.http_tls.cert_file))
    assert running.simulator.http is not None
    facade = Facade(running, running.simulator.http.base_url, "", keys_dir)
    sdk = facade.sdk(partner=True, notify_url=url)
    code, message = await call(
        sdk.pay, "储值卡充值", "HTTPNOTE001", {"total": 300}, payer={"sp_openid": OPENID}, sub_mchid=SUB_MCHID
    )
    assert code == 200, message
    await running.stubs.pay("HTTPNOTE001")

    async def delivered() -> bool:
        async with running.simulator.ctx.uow(readonly=True) as uow:
            notes = await uow.notifications.list("HTTPNOTE001")
        return bool(notes) and notes[0].status is DeliveryStatus.DELIVERED

    await _until(delivered)
    assert len(fake.posts) == 2  # 500 FAIL, then retried on the schedule and answered 204
    async with running.simulator.ctx.uow(readonly=True) as uow:
        (note,) = await uow.notifications.list("HTTPNOTE001")
    assert (note.attempts, note.notify_url) == (2, url)
    bundle = facade.bundle()
    (first_headers, first_body), (headers, body) = fake.posts
    assert first_body == body  # the same body, freshly signed
    assert crypto.header(first_headers, crypto.HEADER_NONCE) != crypto.header(headers, crypto.HEADER_NONCE)
    for sent_headers, sent_body in fake.posts:
        assert crypto.verify_headers(bundle.public_key, bundle.public_key_id, sent_headers, sent_body)
    _, resource = crypto.open_notification(bundle.apiv3_key, body)
    assert (resource["out_trade_no"], resource["trade_state"], resource["sub_mchid"]) == (
        "HTTPNOTE001",
        "SUCCESS",
        SUB_MCHID,
    )
    # the SDK, as a merchant would use it, accepts and decrypts the notification
    assert sdk.callback(headers, body.decode())["resource"]["out_trade_no"] == "HTTPNOTE001"


async def test_notification_to_an_untrusted_certificate_is_not_delivered(
    launch: Launcher, keys_dir: Path, receiver: tuple[Receiver, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS verification stays on: without --notify-ca-file the receiver's self-signed
    certificate is not trusted, so no attempt reaches it and the attempts fail."""
    fake, url, _ = receiver
    running = await launch(http_listen="127.0.0.1:0")
    assert running.simulator.http is not None and running.simulator.http_tls is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(running.simulator.http_tls.cert_file))
    facade = Facade(running, running.simulator.http.base_url, "", keys_dir)
    sdk = facade.sdk(partner=True, notify_url=url)
    code, _ = await call(
        sdk.pay, "储值卡充值", "HTTPNOTE002", {"total": 300}, payer={"sp_openid": OPENID}, sub_mchid=SUB_MCHID
    )
    assert code == 200
    await running.stubs.pay("HTTPNOTE002")

    async def failed_twice() -> bool:
        async with running.simulator.ctx.uow(readonly=True) as uow:
            notes = await uow.notifications.list("HTTPNOTE002")
        return bool(notes) and notes[0].attempts >= 2

    await _until(failed_twice)
    async with running.simulator.ctx.uow(readonly=True) as uow:
        (note,) = await uow.notifications.list("HTTPNOTE002")
    assert note.status is not DeliveryStatus.DELIVERED
    assert "CERTIFICATE_VERIFY_FAILED" in note.last_error or "certificate" in note.last_error.lower()
    assert fake.posts == []


def test_plain_http_only_on_loopback() -> None:
    WechatSettings(http_listen="127.0.0.1:0", http_plaintext=True).validate()
    with pytest.raises(ValueError, match="--http-plaintext"):
        WechatSettings(http_listen="0.0.0.0:8443", http_plaintext=True).validate()
    with pytest.raises(ValueError, match="need --http-listen"):
        WechatSettings(http_plaintext=True).validate()
    with pytest.raises(InvalidArgument, match="notify_url: plain http:// only to a loopback host"):
        validation.notify_url("http://10.0.0.1/notify")
    with pytest.raises(InvalidArgument, match="notify_url: must be an https:// URL"):
        validation.notify_url("ftp://127.0.0.1/notify")
    assert validation.notify_url("http://127.0.0.1:8080/notify") == "http://127.0.0.1:8080/notify"


async def test_transport_faults_of_the_gateway_apply_on_the_http_wire(facade: Facade) -> None:
    """One fault plan drives both wires: rules name the PaymentGateway method a route is."""
    stubs = facade.running.stubs
    sdk = facade.sdk(partner=True)
    prepay = f"{GATEWAY}/CreatePrepay"
    await stubs.set_faults(
        rule(prepay, "LOST_RESPONSE", times=1), rule(f"{GATEWAY}/QueryOrder", "UNAVAILABLE", times=1)
    )
    code, message = await call(
        sdk.pay, "储值卡充值", "HTTPFLT0001", {"total": 100}, payer={"sp_openid": OPENID}, sub_mchid=SUB_MCHID
    )
    assert (code, _json(message)["code"]) == (500, "SYSTEM_ERROR")  # an unknown outcome for the merchant
    code, message = await call(sdk.query, out_trade_no="HTTPFLT0001", sub_mchid=SUB_MCHID)
    assert (code, _json(message)["code"]) == (500, "SYSTEM_ERROR")  # injected before anything
    code, message = await call(sdk.query, out_trade_no="HTTPFLT0001", sub_mchid=SUB_MCHID)
    assert (code, _json(message)["trade_state"]) == (200, "NOTPAY")  # the lost prepay was made


async def test_plain_http_on_loopback_when_asked(launch: Launcher, keys_dir: Path) -> None:
    running = await launch(http_listen="127.0.0.1:0", http_plaintext=True)
    assert running.simulator.http is not None and running.simulator.http_tls is None
    base_url = running.simulator.http.base_url
    assert base_url.startswith("http://127.0.0.1:")
    bundle = Bundle.read(merchant_bundle_dir(keys_dir))
    path = f"/v3/pay/partner/transactions/out-trade-no/NOSUCH0001?sp_mchid={SP_MCHID}&sub_mchid={SUB_MCHID}"
    authorization = crypto.authorization(
        bundle.private_key, bundle.mchid, bundle.serial, "GET", path, timestamp=int(time.time())
    )
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(base_url + path, headers={"Authorization": authorization})
    assert (response.status_code, response.json()["code"]) == (404, "ORDER_NOT_EXIST")
    assert crypto.verify_headers(
        bundle.public_key, bundle.public_key_id, dict(response.headers), response.content
    )


async def _signed(facade: Facade, method: str, path: str, body: bytes = b"") -> httpx.Response:
    """One request signed with the provider's bundle (as a merchant's own client would)."""
    bundle = facade.bundle()
    authorization = crypto.authorization(
        bundle.private_key, bundle.mchid, bundle.serial, method, path, body, timestamp=int(time.time())
    )
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    trust = ssl.create_default_context(cafile=facade.ca_file)
    async with httpx.AsyncClient(verify=trust, trust_env=False) as client:
        return await client.request(method, facade.base_url + path, content=body, headers=headers)


async def test_bad_input_is_400_naming_the_field_and_writes_nothing(facade: Facade) -> None:
    good: dict[str, Any] = {
        "sp_appid": SP_APPID,
        "sp_mchid": SP_MCHID,
        "sub_mchid": SUB_MCHID,
        "description": "储值卡充值",
        "out_trade_no": "HTTPBAD0001",
        "notify_url": "https://127.0.0.1:9/notify",
        "amount": {"total": 100, "currency": "CNY"},
        "payer": {"sp_openid": OPENID},
    }
    cases: dict[str, tuple[dict[str, Any], str, str]] = {
        "long description": ({"description": "x" * 128}, "PARAM_ERROR", "description"),
        "amount not an integer": ({"amount": {"total": "100"}}, "PARAM_ERROR", "amount.total"),
        "amount a boolean": ({"amount": {"total": True}}, "PARAM_ERROR", "amount.total"),
        "zero amount": ({"amount": {"total": 0}}, "PARAM_ERROR", "amount.total"),
        "other currency": ({"amount": {"total": 100, "currency": "USD"}}, "PARAM_ERROR", "amount.currency"),
        "bad out_trade_no": ({"out_trade_no": "a b"}, "PARAM_ERROR", "out_trade_no"),
        "NUL in attach": ({"attach": "a\x00b"}, "PARAM_ERROR", "attach"),
        "plain http notify_url": ({"notify_url": "http://10.1.2.3/n"}, "PARAM_ERROR", "notify_url"),
        "no payer": ({"payer": {}}, "PARAM_ERROR", "payer.sp_openid"),
        "another sp_mchid": ({"sp_mchid": "1900000999"}, "PARAM_ERROR", "sp_mchid"),
        "another app": ({"sp_appid": "wx0000000000000000"}, "APPID_MCHID_NOT_MATCH", ""),
    }
    path = "/v3/pay/partner/transactions/jsapi"
    for case, (change, code, field_name) in cases.items():
        response = await _signed(facade, "POST", path, json.dumps({**good, **change}).encode())
        assert response.status_code == 400, case
        assert response.json()["code"] == code, case
        assert response.json()["message"].startswith(field_name), case
    for case, raw in {"not JSON": b"{", "not an object": b"[1]", "too deep": b"[" * 40 + b"]" * 40}.items():
        response = await _signed(facade, "POST", path, raw)
        assert (response.status_code, response.json()["code"]) == (400, "INVALID_REQUEST"), case
    response = await _signed(facade, "POST", path, b" " * (http_requests.MAX_BODY + 1))
    assert (response.status_code, response.json()["message"]) == (400, "body: larger than 65536 bytes")
    direct_path = "/v3/pay/transactions/jsapi"  # the provider's mchid on a direct path
    response = await _signed(facade, "POST", direct_path, json.dumps({**good, "mchid": SP_MCHID}).encode())
    assert (response.status_code, response.json()["code"]) == (403, "NO_AUTH")
    async with facade.running.simulator.ctx.uow(readonly=True) as uow:
        assert await uow.orders.get("HTTPBAD0001") is None
    response = await _signed(facade, "POST", path, json.dumps(good).encode())
    assert response.status_code == 200  # the same request, well formed
    bundle = facade.bundle()
    for method, other in (("GET", "/v3/no/such/api"), ("DELETE", path)):
        response = await _signed(facade, method, other)
        assert response.status_code in (404, 405) and response.json()["code"] in (
            "NOT_FOUND",
            "INVALID_REQUEST",
        )
        assert crypto.verify_headers(
            bundle.public_key, bundle.public_key_id, dict(response.headers), response.content
        )


async def test_refund_notification_goes_to_the_refunds_notify_url_after_a_dropped_attempt(
    launch: Launcher, keys_dir: Path
) -> None:
    """Plain http:// to a loopback receiver; the ``notify`` DROP fault loses the first attempt."""
    fake, payments = Receiver(answers=[]), Receiver(answers=[])
    app = web.Application()
    app.router.add_post("/refunds", fake.handle)
    app.router.add_post("/payments", payments.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    url = f"{base}/refunds"
    try:
        running = await launch(http_listen="127.0.0.1:0")
        assert running.simulator.http is not None and running.simulator.http_tls is not None
        facade = Facade(
            running, running.simulator.http.base_url, str(running.simulator.http_tls.cert_file), keys_dir
        )
        prepay = {
            "sp_appid": SP_APPID,
            "sp_mchid": SP_MCHID,
            "sub_mchid": SUB_MCHID,
            "description": "储值卡充值",
            "out_trade_no": "HTTPRFN0001",
            "notify_url": f"{base}/payments",
            "amount": {"total": 200},
            "payer": {"sp_openid": OPENID},
        }
        assert (
            await _signed(facade, "POST", "/v3/pay/partner/transactions/jsapi", json.dumps(prepay).encode())
        ).is_success
        await running.stubs.pay("HTTPRFN0001")

        async def paid_notification_delivered() -> bool:
            async with running.simulator.ctx.uow(readonly=True) as uow:
                notes = await uow.notifications.list("HTTPRFN0001")
            return bool(notes) and notes[0].status is DeliveryStatus.DELIVERED

        await _until(paid_notification_delivered)  # so the DROP below is the refund's
        await running.stubs.set_faults(rule("notify", "DROP", times=1))
        refund = {
            "sub_mchid": SUB_MCHID,
            "out_trade_no": "HTTPRFN0001",
            "out_refund_no": "HTTPRFN0001-R1",
            "notify_url": url,
            "amount": {"refund": 200, "total": 200, "currency": "CNY"},
        }
        response = await _signed(facade, "POST", "/v3/refund/domestic/refunds", json.dumps(refund).encode())
        assert response.status_code == 200, response.text

        async def refund_delivered() -> bool:
            async with running.simulator.ctx.uow(readonly=True) as uow:
                notes = await uow.notifications.list("HTTPRFN0001")
            return any(n.out_refund_no and n.status is DeliveryStatus.DELIVERED for n in notes)

        await _until(refund_delivered)
        async with running.simulator.ctx.uow(readonly=True) as uow:
            (note,) = [n for n in await uow.notifications.list("HTTPRFN0001") if n.out_refund_no]
        assert (note.notify_url, note.event_type) == (url, "REFUND.SUCCESS")
        assert note.attempts == 2  # the first was dropped on the way, the retry delivered
        assert len(fake.posts) == 1 and len(payments.posts) == 1
        bundle = facade.bundle()
        headers, body = fake.posts[0]
        assert crypto.verify_headers(bundle.public_key, bundle.public_key_id, headers, body)
        _, resource = crypto.open_notification(bundle.apiv3_key, body)
        assert (resource["out_refund_no"], resource["refund_status"]) == ("HTTPRFN0001-R1", "SUCCESS")
    finally:
        await runner.cleanup()


async def test_beyond_the_admission_limits_requests_are_shed_with_429(
    launch: Launcher, keys_dir: Path
) -> None:
    """One request may run, none wait: while a DELAY fault holds the one slot, the next request
    is answered at once 429 FREQUENCY_LIMITED (an unknown outcome for the merchant: retry)."""
    running = await launch(http_listen="127.0.0.1:0", max_concurrent_calls=1, max_queued_calls=0)
    http, tls = running.simulator.http, running.simulator.http_tls
    assert http is not None and tls is not None
    facade = Facade(running, http.base_url, str(tls.cert_file), keys_dir)
    method = f"{GATEWAY}/QueryOrder"
    await running.stubs.set_faults(rule(method, "DELAY", delay_ms=3000, times=1))
    path = f"/v3/pay/partner/transactions/out-trade-no/HTTPSHED001?sp_mchid={SP_MCHID}&sub_mchid={SUB_MCHID}"
    held = asyncio.create_task(_signed(facade, "GET", path))

    async def slot_taken() -> bool:
        return running.simulator.engine.stats().total >= 1  # the DELAY is drawn inside the slot

    await _until(slot_taken)
    shed = await _signed(facade, "GET", path)
    assert (shed.status_code, shed.json()["code"]) == (429, "FREQUENCY_LIMITED")
    first = await held
    assert (first.status_code, first.json()["code"]) == (404, "ORDER_NOT_EXIST")
    after = await _signed(facade, "GET", path)  # the slot is free again
    assert after.status_code == 404
