"""The APIv3 payment adapter against a small WeChat Pay played by an aiohttp server in the test: it
verifies each request's Authorization with the merchant's certificate (a bad one answers 401
SIGN_ERROR) and signs each response with the platform key — so a wrong signature on either side
fails these tests. Outcomes: done, refused (WeChat's definitive codes), unknown (everything that
proves nothing: 5xx, SYSTEM_ERROR, FREQUENCY_LIMITED, timeouts, TLS failures, unverifiable answers)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from rc_common import wechatpay_crypto as crypto
from rc_common.db import Database
from rc_common.outcomes import Done, Rejected, Unknown
from rc_common.settings import parse_settings
from recharge_service.adapters.retrying import RetryPolicy
from recharge_service.adapters.unit_of_work import SqlUnitOfWork as UnitOfWork
from recharge_service.adapters.unit_of_work import uow_factory
from recharge_service.adapters.wechatpay_v3 import (
    RESPONSE_UNVERIFIED,
    ConfigError,
    TradeBill,
    WechatPayV3Client,
    check_base_url,
)
from recharge_service.domain.merchant import WechatAccount, WechatMode
from recharge_service.domain.timeline import REMOTE_CALL
from recharge_service.service_layer.ports import PaymentTransaction, RefundResult
from recharge_service.service_layer.timeline_notes import TimelineNotes
from recharge_service.settings import PaymentBackend, RechargeSettings
from scripts.certs import make_certs
from tests.integration.recharge_service.fakes import SP_MCHID, SUB_MCHID
from wechat_mock.adapters.keys import PlatformKeys, ensure_direct_keys, ensure_keys, merchant_bundle_dir

FAST = RetryPolicy(attempts=3, deadline=10.0, backoff=0.01, backoff_max=0.02)
DIRECT_MCHID = "1230000109"
SP_APPID, DIRECT_APPID = "wxsp000000000001", "wxdirect00000001"
NOTIFY_URL = "https://recharge.example.com/wechatpay/notify"
PARTNER = WechatAccount(WechatMode.PARTNER, SUB_MCHID, "")
ORDER_NO = "R202611301200000000000001"
REFUND_NO = "RF202611301200000000000001"
BILL = "交易时间,公众账号ID,商户号\n`2026-11-29 12:00:00,`wx1,`1900000109\n".encode()


@dataclass
class Keys:
    keys_dir: Path  # the provider's merchant bundle (what the recharge center reads)
    provider: PlatformKeys
    direct_dir: Path  # the direct merchant's bundle
    direct: PlatformKeys


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    root = tmp_path_factory.mktemp("wechat-keys")
    provider = ensure_keys(root)
    direct = ensure_direct_keys(root, [DIRECT_MCHID])[DIRECT_MCHID]
    return Keys(merchant_bundle_dir(root), provider, merchant_bundle_dir(root, DIRECT_MCHID), direct)


def wechat_default_query(out_trade_no: str) -> tuple[int, dict[str, Any] | None]:
    return 200, {
        "out_trade_no": out_trade_no,
        "transaction_id": "4200000001202611301234567890",
        "trade_state": "SUCCESS",
        "success_time": "2026-11-30T12:00:05+08:00",
        "amount": {"total": 100_000, "payer_total": 100_000, "currency": "CNY"},
    }


@dataclass
class Seen:
    method: str
    path_qs: str
    body: dict[str, Any]
    mchid: str


@dataclass
class FakeWechatPay:
    """WeChat Pay APIv3 as far as these tests need it. ``script(route, *answers)``: the next
    answers of ``"METHOD /path"`` (query left out): ``(status, json | None)``, or ``"hang"``,
    ``"tamper"`` (a valid answer whose signature no longer matches), ``"stale"``, ``"unsigned"``."""

    keys: Keys
    seen: list[Seen] = field(default_factory=list)
    scripts: dict[str, deque[Any]] = field(default_factory=dict)
    base_url: str = ""

    def script(self, route: str, *answers: Any) -> None:
        self.scripts.setdefault(route, deque()).extend(answers)

    def _account(self, mchid: str) -> PlatformKeys | None:
        return {SP_MCHID: self.keys.provider, DIRECT_MCHID: self.keys.direct}.get(mchid)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        signed = crypto.parse_authorization(request.headers.get("Authorization", ""))
        account = self._account(signed.mchid) if signed else None
        path_qs = request.raw_path
        if (
            signed is None
            or account is None
            or signed.serial_no != account.merchant_serial
            or not crypto.timestamp_is_fresh(signed.timestamp, time.time())
            or not crypto.verify_request(account.merchant_cert_pem, signed, request.method, path_qs, body)
        ):
            # As WeChat: an answer to a request whose signature does not verify is not signed.
            return web.json_response({"code": "SIGN_ERROR", "message": "signature wrong"}, status=401)
        self.seen.append(Seen(request.method, path_qs, json.loads(body) if body else {}, signed.mchid))
        route = f"{request.method} {request.path}"
        queue = self.scripts.get(route)
        answer = queue.popleft() if queue else None
        if answer is None:
            answer = BILL if request.path == "/v3/billdownload/file" else self._default(request)
        if answer == "hang":
            await asyncio.sleep(30)
        if isinstance(answer, bytes):  # a file (the bill): not signed
            return web.Response(body=answer, content_type="text/plain")
        if isinstance(answer, str):
            answer = (answer, *self._default(request))
        if len(answer) == 2:
            answer = ("", *answer)
        fault, status, document = answer
        if fault == "as-provider":
            return self._signed(self.keys.provider, status, document)
        if fault == "stale":
            return self._signed(account, status, document, timestamp=int(time.time()) - 301)
        response = self._signed(account, status, document)
        if fault == "tamper":
            response.headers[crypto.HEADER_SIGNATURE] = _flip(response.headers[crypto.HEADER_SIGNATURE])
        elif fault == "unsigned":
            for name in list(response.headers):
                if name.lower().startswith("wechatpay-"):
                    del response.headers[name]
        return response

    def _default_for_query(self, out_trade_no: str) -> tuple[int, dict[str, Any] | None]:
        return wechat_default_query(out_trade_no)

    def _default(self, request: web.Request) -> tuple[int, dict[str, Any] | None]:
        path = request.path
        if path.endswith("/jsapi"):
            return 200, {"prepay_id": "wx201410272009395522657a690389285100"}
        if path.endswith("/close"):
            return 204, None
        if "/out-trade-no/" in path:
            return self._default_for_query(path.rsplit("/", 1)[1])
        if path.startswith("/v3/refund/domestic/refunds"):
            asked = self.seen[-1].body
            return 200, {
                "refund_id": "50300000012026113000000000001",
                "out_refund_no": asked.get("out_refund_no") or path.rsplit("/", 1)[1],
                "out_trade_no": asked.get("out_trade_no", ORDER_NO),
                "status": "PROCESSING",
                "amount": {"refund": 100_000, "total": 100_000, "currency": "CNY"},
            }
        if path == "/v3/bill/tradebill":
            return 200, {
                "hash_type": "SHA1",
                "hash_value": hashlib.sha1(BILL).hexdigest(),
                "download_url": f"{self.base_url}/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd",
            }
        return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "no such API"}

    def _signed(
        self, keys: PlatformKeys, status: int, document: dict[str, Any] | None, timestamp: int | None = None
    ) -> web.Response:
        text = "" if document is None else json.dumps(document, ensure_ascii=False)
        headers = crypto.signed_headers(
            keys.private_key_pem,
            keys.public_key_id,
            text,
            timestamp=int(time.time()) if timestamp is None else timestamp,
        )
        if document is None:
            return web.Response(status=status, headers=headers)
        return web.Response(status=status, text=text, content_type="application/json", headers=headers)


def _flip(signature: str) -> str:
    raw = bytearray(base64.b64decode(signature))
    raw[7] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@asynccontextmanager
async def serving(fake: FakeWechatPay, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = runner.addresses[0][1]
    fake.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        yield fake.base_url
    finally:
        await runner.cleanup()


@pytest.fixture
async def wechat(keys: Keys) -> AsyncIterator[FakeWechatPay]:
    fake = FakeWechatPay(keys)
    async with serving(fake):
        yield fake


def client_for(
    db: Database, keys: Keys, base_url: str, policy: RetryPolicy = FAST, **options: Any
) -> WechatPayV3Client:
    return WechatPayV3Client(
        TimelineNotes(uow_factory(db)),
        policy,
        sp_mchid=SP_MCHID,
        keys_dir=keys.keys_dir,
        base_url=base_url,
        appid=DIRECT_APPID,
        sp_appid=SP_APPID,
        notify_url=NOTIFY_URL,
        **options,
    )


@pytest.fixture
async def client(db: Database, keys: Keys, wechat: FakeWechatPay) -> AsyncIterator[WechatPayV3Client]:
    built = client_for(db, keys, wechat.base_url)
    yield built
    await built.close()


def direct(keys: Keys) -> WechatAccount:
    return WechatAccount(WechatMode.DIRECT, DIRECT_MCHID, "", str(keys.direct_dir))


async def remote_rows(db: Database, order_no: str) -> list[tuple[str, str, str]]:
    async with UnitOfWork(db, readonly=True) as uow:
        entries = await uow.timeline.for_order(order_no)
    return [(e.method, e.outcome, e.detail) for e in entries if e.kind == REMOTE_CALL]


# --- happy paths, both modes --------------------------------------------------------------------


async def test_partner_mode_every_call_signed_by_the_provider_and_answers_believed(
    db: Database, client: WechatPayV3Client, wechat: FakeWechatPay
) -> None:
    prepay = await client.create_prepay(
        PARTNER, ORDER_NO, "Top-up", 100_000, "o-payer-1", "2026-11-30T12:30:00+08:00"
    )
    assert isinstance(prepay, Done) and prepay.value == "wx201410272009395522657a690389285100"
    query = await client.query_order(PARTNER, ORDER_NO)
    assert isinstance(query, Done)
    assert query.value == PaymentTransaction(
        ORDER_NO, "4200000001202611301234567890", "SUCCESS", 100_000, "2026-11-30T12:00:05+08:00"
    )
    close = await client.close_order(PARTNER, ORDER_NO)
    assert isinstance(close, Done) and close.value == "CLOSED"
    refund = await client.create_refund(PARTNER, ORDER_NO, REFUND_NO, 100_000, 100_000, "card voided")
    assert isinstance(refund, Done)
    assert refund.value == RefundResult(REFUND_NO, "50300000012026113000000000001", "PROCESSING", 100_000)
    asked = await client.query_refund(PARTNER, ORDER_NO, REFUND_NO)
    assert isinstance(asked, Done) and asked.value.status == "PROCESSING"

    assert {seen.mchid for seen in wechat.seen} == {SP_MCHID}  # the requesting merchant: sp_mchid
    assert [(s.method, s.path_qs) for s in wechat.seen] == [
        ("POST", "/v3/pay/partner/transactions/jsapi"),
        (
            "GET",
            f"/v3/pay/partner/transactions/out-trade-no/{ORDER_NO}?sp_mchid={SP_MCHID}&sub_mchid={SUB_MCHID}",
        ),
        ("POST", f"/v3/pay/partner/transactions/out-trade-no/{ORDER_NO}/close"),
        ("POST", "/v3/refund/domestic/refunds"),
        ("GET", f"/v3/refund/domestic/refunds/{REFUND_NO}?sub_mchid={SUB_MCHID}"),
    ]
    assert wechat.seen[0].body == {
        "description": "Top-up",
        "out_trade_no": ORDER_NO,
        "notify_url": NOTIFY_URL,
        "amount": {"total": 100_000, "currency": "CNY"},
        "time_expire": "2026-11-30T12:30:00+08:00",
        "sp_appid": SP_APPID,
        "sp_mchid": SP_MCHID,
        "sub_mchid": SUB_MCHID,
        "payer": {"sp_openid": "o-payer-1"},
    }
    assert wechat.seen[2].body == {"sp_mchid": SP_MCHID, "sub_mchid": SUB_MCHID}
    assert wechat.seen[3].body == {
        "sub_mchid": SUB_MCHID,
        "out_trade_no": ORDER_NO,
        "out_refund_no": REFUND_NO,
        "reason": "card voided",
        "amount": {"refund": 100_000, "total": 100_000, "currency": "CNY"},
        "notify_url": NOTIFY_URL,
    }
    prepay_rows = [row for row in await remote_rows(db, ORDER_NO) if row[0].endswith("CreatePrepay")]
    assert prepay_rows == [  # the timeline names the call as the gRPC contract does
        ("/wechatpay.v1.PaymentGateway/CreatePrepay", "sent", "attempt 1/3: sent, answer pending"),
        ("/wechatpay.v1.PaymentGateway/CreatePrepay", "done", "attempt 1/3"),
    ]


async def test_direct_mode_every_call_signed_by_the_merchant_itself(
    db: Database, client: WechatPayV3Client, wechat: FakeWechatPay, keys: Keys
) -> None:
    account = direct(keys)
    prepay = await client.create_prepay(account, ORDER_NO, "Top-up", 100_000, "o-payer-1", "")
    assert isinstance(prepay, Done)
    assert isinstance(await client.query_order(account, ORDER_NO), Done)
    assert isinstance(await client.close_order(account, ORDER_NO), Done)
    refund = await client.create_refund(account, ORDER_NO, REFUND_NO, 500, 100_000, "partial")
    assert isinstance(refund, Done)
    assert isinstance(await client.query_refund(account, ORDER_NO, REFUND_NO), Done)

    assert {seen.mchid for seen in wechat.seen} == {DIRECT_MCHID}
    assert [(s.method, s.path_qs) for s in wechat.seen] == [
        ("POST", "/v3/pay/transactions/jsapi"),
        ("GET", f"/v3/pay/transactions/out-trade-no/{ORDER_NO}?mchid={DIRECT_MCHID}"),
        ("POST", f"/v3/pay/transactions/out-trade-no/{ORDER_NO}/close"),
        ("POST", "/v3/refund/domestic/refunds"),
        ("GET", f"/v3/refund/domestic/refunds/{REFUND_NO}"),
    ]
    assert wechat.seen[0].body == {
        "description": "Top-up",
        "out_trade_no": ORDER_NO,
        "notify_url": NOTIFY_URL,
        "amount": {"total": 100_000, "currency": "CNY"},
        "appid": DIRECT_APPID,
        "mchid": DIRECT_MCHID,
        "payer": {"openid": "o-payer-1"},
    }
    assert wechat.seen[2].body == {"mchid": DIRECT_MCHID}
    assert "sub_mchid" not in wechat.seen[3].body


async def test_a_direct_merchants_answer_signed_with_the_providers_key_is_not_believed(
    db: Database, client: WechatPayV3Client, wechat: FakeWechatPay, keys: Keys
) -> None:
    """Each bundle's platform key vouches for its own merchant's answers only."""
    status, document = wechat._default_for_query(ORDER_NO)
    wechat.script(
        f"GET /v3/pay/transactions/out-trade-no/{ORDER_NO}",
        *[("as-provider", status, document)] * FAST.attempts,
    )
    outcome = await client.query_order(direct(keys), ORDER_NO)
    assert isinstance(outcome, Unknown) and outcome.code == RESPONSE_UNVERIFIED


@pytest.mark.parametrize("mode", ["partner", "direct"])
async def test_the_trade_bill_is_downloaded_and_its_digest_checked(
    db: Database, client: WechatPayV3Client, wechat: FakeWechatPay, keys: Keys, mode: str
) -> None:
    account = PARTNER if mode == "partner" else direct(keys)
    outcome = await client.download_trade_bill(account, "2026-11-29")
    assert isinstance(outcome, Done)
    assert outcome.value == TradeBill(
        "SHA1",
        hashlib.sha1(BILL).hexdigest(),
        f"{wechat.base_url}/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd",
        BILL,
    )
    expected = "/v3/bill/tradebill?bill_date=2026-11-29" + (
        f"&sub_mchid={SUB_MCHID}" if mode == "partner" else ""
    )
    assert [s.path_qs for s in wechat.seen] == [expected, "/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd"]

    wechat.script("GET /v3/billdownload/file", BILL + b"tampered")
    spoiled = await client.download_trade_bill(account, "2026-11-29")
    assert isinstance(spoiled, Unknown) and "does not match" in spoiled.detail


async def test_a_download_url_on_another_origin_is_not_followed(
    db: Database, client: WechatPayV3Client, wechat: FakeWechatPay
) -> None:
    wechat.script(
        "GET /v3/bill/tradebill",
        (
            200,
            {
                "hash_type": "SHA1",
                "hash_value": "00",
                "download_url": "https://evil.example/v3/billdownload/file",
            },
        ),
    )
    outcome = await client.download_trade_bill(PARTNER, "2026-11-29")
    assert isinstance(outcome, Unknown)
    assert len(wechat.seen) == 1


# --- errors -------------------------------------------------------------------------------------

CALLS = {
    "prepay": (
        "POST /v3/pay/partner/transactions/jsapi",
        lambda c: c.create_prepay(PARTNER, ORDER_NO, "Top-up", 100, "o", ""),
    ),
    "query": (
        f"GET /v3/pay/partner/transactions/out-trade-no/{ORDER_NO}",
        lambda c: c.query_order(PARTNER, ORDER_NO),
    ),
    "close": (
        f"POST /v3/pay/partner/transactions/out-trade-no/{ORDER_NO}/close",
        lambda c: c.close_order(PARTNER, ORDER_NO),
    ),
    "refund": (
        "POST /v3/refund/domestic/refunds",
        lambda c: c.create_refund(PARTNER, ORDER_NO, REFUND_NO, 100, 100, "r"),
    ),
    "query_refund": (
        f"GET /v3/refund/domestic/refunds/{REFUND_NO}",
        lambda c: c.query_refund(PARTNER, ORDER_NO, REFUND_NO),
    ),
}

#: (call, HTTP status, WeChat code) -> (our code, our reason) of the refusal.
REFUSALS = [
    ("prepay", 403, "ORDER_PAID", "FAILED_PRECONDITION", "ORDER_PAID"),
    ("prepay", 403, "ORDER_CLOSED", "FAILED_PRECONDITION", "ORDER_CLOSED"),
    ("prepay", 400, "PARAM_ERROR", "INVALID_ARGUMENT", "PARAM_ERROR"),
    ("prepay", 400, "INVALID_REQUEST", "INVALID_ARGUMENT", "INVALID_REQUEST"),
    ("prepay", 403, "NO_AUTH", "PERMISSION_DENIED", "NO_AUTH"),
    ("query", 404, "ORDER_NOT_EXIST", "NOT_FOUND", "ORDER_NOT_EXIST"),
    ("close", 403, "ORDER_PAID", "FAILED_PRECONDITION", "ORDER_PAID"),
    ("close", 404, "ORDER_NOT_EXIST", "NOT_FOUND", "ORDER_NOT_EXIST"),
    ("refund", 403, "NOT_ENOUGH", "FAILED_PRECONDITION", "NOT_ENOUGH"),
    ("refund", 404, "RESOURCE_NOT_EXISTS", "NOT_FOUND", "RESOURCE_NOT_EXISTS"),
    ("refund", 401, "SIGN_ERROR", "UNAUTHENTICATED", "SIGN_ERROR"),  # were it signed
    ("query_refund", 404, "RESOURCE_NOT_EXISTS", "NOT_FOUND", "RESOURCE_NOT_EXISTS"),
    ("close", 400, "ORDER_CLOSED", "FAILED_PRECONDITION", "ORDER_CLOSED"),  # the code decides
    ("close", 403, "ORDERPAID", "FAILED_PRECONDITION", "ORDER_PAID"),  # the older spelling
    ("prepay", 403, "OUT_TRADE_NO_USED", "FAILED_PRECONDITION", "OUT_TRADE_NO_USED"),
]


@pytest.mark.parametrize(("call", "status", "wechat_code", "code", "reason"), REFUSALS)
async def test_a_definitive_wechat_error_is_a_refusal_and_not_retried(
    client: WechatPayV3Client,
    wechat: FakeWechatPay,
    call: str,
    status: int,
    wechat_code: str,
    code: str,
    reason: str,
) -> None:
    route, make = CALLS[call]
    wechat.script(route, (status, {"code": wechat_code, "message": "说明"}))
    outcome = await make(client)
    assert isinstance(outcome, Rejected)
    assert (outcome.code, outcome.reason, outcome.detail) == (code, reason, "说明")
    assert len(wechat.seen) == 1


UNKNOWNS = [
    ("prepay", 500, {"code": "SYSTEM_ERROR", "message": "busy"}, "SYSTEM_ERROR"),
    ("refund", 500, {"code": "SYSTEM_ERROR", "message": "busy"}, "SYSTEM_ERROR"),
    ("query", 429, {"code": "FREQUENCY_LIMITED", "message": "slow down"}, "FREQUENCY_LIMITED"),
    ("refund", 403, {"code": "FREQUENCY_LIMITED", "message": "slow down"}, "FREQUENCY_LIMITED"),
    ("refund", 500, {"code": "BANK_ERROR", "message": "bank"}, "BANK_ERROR"),
    ("close", 502, None, "HTTP_502"),
    ("query_refund", 503, {"code": "SYSTEM_ERROR", "message": "x"}, "SYSTEM_ERROR"),
    ("query", 403, {"code": "SYSTEMERROR", "message": "x"}, "SYSTEM_ERROR"),
    ("prepay", 409, {"code": "ORDER_PAID", "message": "x"}, "ORDER_PAID"),  # not a status we know
    ("query", 200, {"trade_state": "SUCCESS"}, "BAD_RESPONSE"),  # no out_trade_no: not an answer
]


UNKNOWNS += [
    ("query", *wechat_default_query("R-ANOTHER-ORDER"), "BAD_RESPONSE"),  # about another order
    ("refund", 200, {"out_refund_no": "RF-ANOTHER", "refund_id": "1", "status": "SUCCESS"}, "BAD_RESPONSE"),
    (
        "query_refund",
        200,
        {"out_refund_no": "RF-ANOTHER", "refund_id": "1", "status": "SUCCESS"},
        "BAD_RESPONSE",
    ),
]


@pytest.mark.parametrize(("call", "status", "document", "expected"), UNKNOWNS)
async def test_an_error_that_proves_nothing_is_unknown_and_retried(
    db: Database,
    client: WechatPayV3Client,
    wechat: FakeWechatPay,
    call: str,
    status: int,
    document: dict[str, Any] | None,
    expected: str,
) -> None:
    route, make = CALLS[call]
    wechat.script(route, *[(status, document)] * FAST.attempts)
    outcome = await make(client)
    assert isinstance(outcome, Unknown)
    assert outcome.code == expected
    assert len(wechat.seen) == FAST.attempts  # retried: the same request again


@pytest.mark.parametrize("fault", ["tamper", "stale", "unsigned"])
@pytest.mark.parametrize("call", sorted(CALLS))
async def test_an_answer_whose_signature_does_not_verify_is_unknown_never_believed(
    client: WechatPayV3Client, wechat: FakeWechatPay, call: str, fault: str
) -> None:
    route, make = CALLS[call]
    wechat.script(route, *[fault] * FAST.attempts)
    outcome = await make(client)
    assert isinstance(outcome, Unknown)
    assert outcome.code == RESPONSE_UNVERIFIED


@pytest.mark.parametrize("fault", ["tamper", "unsigned"])
async def test_an_unverifiable_refusal_is_unknown_not_a_refusal(
    client: WechatPayV3Client, wechat: FakeWechatPay, fault: str
) -> None:
    """A forged 403 ORDER_PAID must not make us believe the order was paid (nor refuse a close)."""
    route, make = CALLS["close"]
    wechat.script(route, *[(fault, 403, {"code": "ORDER_PAID", "message": "paid"})] * FAST.attempts)
    outcome = await make(client)
    assert isinstance(outcome, Unknown) and outcome.code == RESPONSE_UNVERIFIED


async def test_a_wechat_that_does_not_answer_in_time_is_unknown(
    db: Database, keys: Keys, wechat: FakeWechatPay
) -> None:
    policy = RetryPolicy(attempts=2, deadline=1.0, backoff=0.01, backoff_max=0.02)
    client = client_for(db, keys, wechat.base_url, policy)
    try:
        route, make = CALLS["refund"]
        wechat.script(route, "hang", "hang")
        outcome = await make(client)
    finally:
        await client.close()
    assert isinstance(outcome, Unknown)
    assert outcome.code == "DEADLINE_EXCEEDED"
    assert len(wechat.seen) == 2


async def test_a_wechat_that_is_down_is_unknown(db: Database, keys: Keys) -> None:
    fake = FakeWechatPay(keys)
    async with serving(fake) as base_url:
        pass  # bound, then closed: nobody listens there now
    client = client_for(db, keys, base_url)
    try:
        outcome = await CALLS["prepay"][1](client)
    finally:
        await client.close()
    assert isinstance(outcome, Unknown) and outcome.code == "UNAVAILABLE"


async def test_tls_is_verified_a_server_outside_the_trust_is_unknown(
    db: Database, keys: Keys, tmp_path: Path
) -> None:
    make_certs(tmp_path, ["wechat"])
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(tmp_path / "wechat" / "tls.crt", tmp_path / "wechat" / "tls.key")
    fake = FakeWechatPay(keys)
    async with serving(fake, tls) as base_url:
        untrusting = client_for(db, keys, base_url)
        trusting = client_for(db, keys, base_url, ca_file=str(tmp_path / "wechat" / "ca.crt"))
        try:
            refused = await CALLS["query"][1](untrusting)
            assert fake.seen == []  # the handshake failed: nothing was sent
            believed = await CALLS["query"][1](trusting)
        finally:
            await untrusting.close()
            await trusting.close()
    assert isinstance(refused, Unknown) and refused.code == "UNAVAILABLE"
    assert "CERTIFICATE_VERIFY_FAILED" in refused.detail
    assert isinstance(believed, Done) and believed.value.trade_state == "SUCCESS"


async def test_a_request_wechat_cannot_verify_is_unknown_and_says_what_to_check(
    db: Database, keys: Keys, wechat: FakeWechatPay, tmp_path: Path
) -> None:
    """The fake really checks our signature: a request signed with another key than the
    certificate's fails (answered 401 SIGN_ERROR, unsigned, as WeChat does)."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for entry in keys.keys_dir.iterdir():
        if entry.is_file():
            (bundle / entry.name).write_bytes(entry.read_bytes())
    (bundle / "apiclient_key.pem").write_bytes((keys.direct_dir / "apiclient_key.pem").read_bytes())
    client = client_for(db, Keys(bundle, keys.provider, keys.direct_dir, keys.direct), wechat.base_url)
    try:
        outcome = await CALLS["prepay"][1](client)
    finally:
        await client.close()
    # Unsigned, so unknown (nothing we cannot verify is a refusal), and it says what to check.
    assert isinstance(outcome, Unknown) and outcome.code == RESPONSE_UNVERIFIED
    assert "SIGN_ERROR" in outcome.detail and "apiclient_key.pem" in outcome.detail
    assert wechat.seen == []


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com",
        "ftp://127.0.0.1",
        "https://",
        "https://h/x?y=1",
        "https://h/prefix",
        "http://10.0.0.1:80",
    ],
)
def test_plain_http_only_to_loopback(url: str) -> None:
    with pytest.raises(ConfigError):
        check_base_url(url)
    assert check_base_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert check_base_url("https://api.mch.weixin.qq.com") == "https://api.mch.weixin.qq.com"


def parse(*argv: str) -> RechargeSettings:
    return parse_settings(RechargeSettings, list(argv), prog="recharge_service", description="")


def test_the_backend_is_grpc_unless_chosen_and_apiv3_settings_are_checked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert parse().wechatpay.backend is PaymentBackend.GRPC  # `make run` unchanged
    chosen = parse(
        "--payment-backend", "wechatpay-v3", "--wechatpay-notify-url", NOTIFY_URL,
        "--notify-http-listen", "127.0.0.1:8443",
    )  # fmt: skip
    assert chosen.wechatpay.backend is PaymentBackend.WECHATPAY_V3
    assert chosen.wechatpay.base_url == "https://api.mch.weixin.qq.com"
    assert chosen.notify.http_listen == "127.0.0.1:8443"
    for bad in (
        ["--payment-backend", "wechatpay-v3"],  # no notify URL
        ["--payment-backend", "wechatpay-v3", "--wechatpay-notify-url", "http://recharge.example.com/n"],
        ["--payment-backend", "wechatpay-v3", "--wechatpay-notify-url", NOTIFY_URL,
         "--wechatpay-base-url", "http://api.example.com"],
        ["--payment-backend", "wechatpay-v3", "--wechatpay-notify-url", NOTIFY_URL,
         "--wechatpay-ca-file", "/nonexistent/ca.pem"],
        ["--notify-http-listen", "0.0.0.0:8443"],  # plaintext off loopback
    ):  # fmt: skip
        with pytest.raises(SystemExit):
            parse(*bad)
    assert "--notify-http-tls-dir" in capsys.readouterr().err
