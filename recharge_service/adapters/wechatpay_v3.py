"""The payment gateway port over WeChat Pay APIv3 (signed HTTPS, JSON), beside the gRPC client.

Same port, same answers as ``payment_client.PaymentClient``: the timeline names each call as the
gRPC contract does (``/wechatpay.v1.PaymentGateway/CreatePrepay``, ...), so a flow's announcement
and every attempt's row read the same whichever wire carried it; retries, deadlines and leases are
``retrying.with_retries``'s.

- Requests: JSON bodies, signed with the merchant's key (``apiclient_key.pem``, its certificate
  serial ``apiclient_serial.txt``) in the ``Authorization`` header; the mchid in it is the
  requesting merchant's: the provider's (sp_mchid) in partner mode, the merchant's own in direct
  mode (its configuration's ``keys_dir`` holds its bundle).
- Responses: believed only once their ``Wechatpay-*`` signature verifies with the platform public
  key of the same bundle (``platform_public_key.pem`` / ``public_key_id.txt``) and the timestamp is
  fresh; otherwise the outcome is *unknown* (``RESPONSE_UNVERIFIED``) — never a refusal.
- Outcomes: 2xx done; 400/401/403/404 with a WeChat code a refusal (``code`` as the gRPC client
  reports it: INVALID_ARGUMENT, UNAUTHENTICATED, FAILED_PRECONDITION with the WeChat code as the
  reason, PERMISSION_DENIED, NOT_FOUND); timeouts, connection and TLS errors, 5xx, 429 and the
  codes in ``UNKNOWN_CODES`` (SYSTEM_ERROR, FREQUENCY_LIMITED, BANK_ERROR, ...) unknown.
- Transport: one ``httpx.AsyncClient`` (connections reused), TLS verified against the system trust
  or ``ca_file``; plain ``http://`` only to a loopback host (tests, the simulator's facade).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import httpx

from rc_common import wechatpay_crypto as crypto
from rc_common.outcomes import Done, Rejected, RemoteFailure, Unknown
from rc_common.tls import is_loopback
from rc_common.validation import loads_json
from recharge_service.adapters.key_guard import refuse_platform_private_key
from recharge_service.adapters.retrying import RetryPolicy, with_retries
from recharge_service.domain.merchant import WechatAccount, WechatMode
from recharge_service.service_layer.ports import PAYMENT_METHODS, PaymentTransaction, RefundResult, Timeline

V = TypeVar("V")

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
MERCHANT_KEY_FILE = "apiclient_key.pem"
MERCHANT_SERIAL_FILE = "apiclient_serial.txt"
MCHID_FILE = "mchid.txt"
PUBLIC_KEY_FILE = "platform_public_key.pem"
PUBLIC_KEY_ID_FILE = "public_key_id.txt"

#: Our ``Unknown`` codes for answers that prove nothing.
RESPONSE_UNVERIFIED = "RESPONSE_UNVERIFIED"
BAD_RESPONSE = "BAD_RESPONSE"
#: WeChat error codes that say "not decided / try again", whatever the HTTP status.
UNKNOWN_CODES = frozenset({"SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED", "BANK_ERROR", "BANKERROR"})
#: HTTP status -> our refusal code (the gRPC client's code for the simulator's equivalent).
REFUSAL_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "FAILED_PRECONDITION",
    404: "NOT_FOUND",
}
#: 403 codes that are about who asks, not about the order.
PERMISSION_CODES = frozenset({"NO_AUTH", "REQUEST_BLOCKED", "ACCOUNT_ERROR", "ACCOUNTERROR"})
#: WeChat codes whose meaning does not depend on the HTTP status they come with (some APIs answer
#: ORDER_CLOSED with 400, others with 403): a definitive business refusal, or "no such record".
BUSINESS_CODES = frozenset(
    {
        "ORDER_PAID",
        "ORDER_CLOSED",
        "NOT_ENOUGH",
        "OUT_TRADE_NO_USED",
        "TRADE_NOT_PAID",
        "USER_ACCOUNT_ABNORMAL",
    }
)
NOT_FOUND_CODES = frozenset({"ORDER_NOT_EXIST", "RESOURCE_NOT_EXISTS"})
#: Older spellings WeChat still sends on some APIs -> the code the service layer knows.
CODE_ALIASES = {
    "ORDERPAID": "ORDER_PAID",
    "ORDERCLOSED": "ORDER_CLOSED",
    "ORDERNOTEXIST": "ORDER_NOT_EXIST",
    "SYSTEMERROR": "SYSTEM_ERROR",
    "BANKERROR": "BANK_ERROR",
}
#: The largest response body read (a bill file included).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


class ConfigError(ValueError):
    """A base URL or key bundle the adapter cannot use safely."""


@dataclass(frozen=True, repr=False)
class SigningKeys:
    """One merchant bundle: the key that signs our requests and the platform key that verifies the
    answers (``repr`` leaves the keys out of logs)."""

    mchid: str
    serial_no: str
    private_key_pem: bytes
    platform_public_key_pem: bytes
    platform_public_key_id: str
    source: str = ""

    def __repr__(self) -> str:
        return f"SigningKeys({self.source!r}, mchid={self.mchid!r})"


def load_signing_keys(keys_dir: str | Path) -> SigningKeys:
    """The request-signing side of a merchant bundle; ``KeysDirRefused`` for a directory holding
    WeChat's platform private key, ``OSError``/``ValueError`` for a missing or empty file."""
    directory = Path(keys_dir)
    refuse_platform_private_key(directory)

    def text(name: str) -> str:
        value = (directory / name).read_text().strip()
        if not value:
            raise ValueError(f"{directory / name} is empty")
        return value

    key = (directory / MERCHANT_KEY_FILE).read_bytes()
    public = (directory / PUBLIC_KEY_FILE).read_bytes()
    if b"-----BEGIN" not in key or b"-----BEGIN" not in public:
        raise ValueError(f"{directory}: {MERCHANT_KEY_FILE} and {PUBLIC_KEY_FILE} must be PEM")
    mchid = (directory / MCHID_FILE).read_text().strip() if (directory / MCHID_FILE).exists() else ""
    return SigningKeys(
        mchid, text(MERCHANT_SERIAL_FILE), key, public, text(PUBLIC_KEY_ID_FILE), str(directory)
    )


def check_base_url(base_url: str) -> str:
    """``https://host[:port]``, or ``http://`` to a loopback host only; returned without a trailing /."""
    parts = urlsplit(base_url)
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(f"{base_url!r}: expected https://host[:port]")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"{base_url!r}: plain http is for loopback hosts only; use https")
    return base_url.rstrip("/")


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """Server certificates verified (hostname included) against ``ca_file``, else the system trust."""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass(frozen=True)
class TradeBill:
    """``GET /v3/bill/tradebill`` and its file, whose digest was checked."""

    hash_type: str
    hash_value: str
    download_url: str
    content: bytes


@dataclass(frozen=True)
class _Answer:
    status: int
    document: Any
    content: bytes


class WechatPayV3Client:
    """``PaymentGateway`` over APIv3. ``sp_mchid``/``keys_dir``: the provider's account and bundle
    (partner mode); a direct-mode merchant's bundle is its configuration's ``keys_dir``."""

    def __init__(
        self,
        timeline: Timeline,
        policy: RetryPolicy,
        *,
        sp_mchid: str,
        keys_dir: str | Path,
        base_url: str = DEFAULT_BASE_URL,
        ca_file: str = "",
        appid: str = "",
        sp_appid: str = "",
        notify_url: str = "",
        max_skew_s: float = crypto.MAX_TIMESTAMP_SKEW_S,
        clock: Callable[[], float] = time.time,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._timeline = timeline
        self._policy = policy
        self._sp_mchid = sp_mchid
        self._keys_dir = str(keys_dir)
        self._base_url = check_base_url(base_url)
        self._appid = appid
        self._sp_appid = sp_appid
        self._notify_url = notify_url
        self._max_skew_s = max_skew_s
        self._clock = clock
        self._keys: dict[str, SigningKeys] = {}
        self._http = http or httpx.AsyncClient(
            verify=tls_context(ca_file),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=32, max_connections=128),
        )

    async def close(self) -> None:
        await self._http.aclose()

    # --- the port ---------------------------------------------------------------------------

    async def create_prepay(
        self,
        account: WechatAccount,
        out_trade_no: str,
        description: str,
        amount_total_fen: int,
        payer_openid: str,
        time_expire: str,
    ) -> Done[str] | Rejected | Unknown:
        body: dict[str, Any] = {
            "description": description,
            "out_trade_no": out_trade_no,
            "notify_url": self._notify_url,
            "amount": {"total": amount_total_fen, "currency": "CNY"},
        }
        if time_expire:
            body["time_expire"] = time_expire
        if account.mode is WechatMode.DIRECT:
            body.update(appid=account.appid or self._appid, mchid=account.mchid)
            body["payer"] = {"openid": payer_openid}
            path = "/v3/pay/transactions/jsapi"
        else:
            body.update(sp_appid=self._sp_appid, sp_mchid=self._sp_mchid, sub_mchid=account.mchid)
            if account.appid:
                body["sub_appid"] = account.appid
            body["payer"] = {"sp_openid": payer_openid}
            path = "/v3/pay/partner/transactions/jsapi"
        return await self._call(
            "CreatePrepay", account, out_trade_no, "POST", path, {}, body, _prepay_id, announce=True
        )

    async def query_order(
        self, account: WechatAccount, out_trade_no: str
    ) -> Done[PaymentTransaction] | Rejected | Unknown:
        no = quote(out_trade_no, safe="")
        if account.mode is WechatMode.DIRECT:
            path, query = f"/v3/pay/transactions/out-trade-no/{no}", {"mchid": account.mchid}
        else:
            path = f"/v3/pay/partner/transactions/out-trade-no/{no}"
            query = {"sp_mchid": self._sp_mchid, "sub_mchid": account.mchid}
        return await self._call(
            "QueryOrder", account, out_trade_no, "GET", path, query, None,
            lambda answer: _same("out_trade_no", out_trade_no, _transaction(answer)),
            describe=lambda t: t.trade_state,
        )  # fmt: skip

    async def close_order(self, account: WechatAccount, out_trade_no: str) -> Done[str] | Rejected | Unknown:
        no = quote(out_trade_no, safe="")
        if account.mode is WechatMode.DIRECT:
            path, body = f"/v3/pay/transactions/out-trade-no/{no}/close", {"mchid": account.mchid}
        else:
            path = f"/v3/pay/partner/transactions/out-trade-no/{no}/close"
            body = {"sp_mchid": self._sp_mchid, "sub_mchid": account.mchid}
        return await self._call(
            "CloseOrder", account, out_trade_no, "POST", path, {}, body, lambda _answer: "CLOSED",
            announce=True, describe=str,
        )  # fmt: skip

    async def create_refund(
        self,
        account: WechatAccount,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str,
    ) -> Done[RefundResult] | Rejected | Unknown:
        body: dict[str, Any] = {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "reason": reason,
            "amount": {"refund": refund_fen, "total": total_fen, "currency": "CNY"},
        }
        if self._notify_url:
            body["notify_url"] = self._notify_url
        if account.mode is WechatMode.PARTNER:
            body = {"sub_mchid": account.mchid, **body}
        return await self._call(
            "CreateRefund", account, out_trade_no, "POST", "/v3/refund/domestic/refunds", {}, body,
            lambda answer: _same("out_refund_no", out_refund_no, _refund(answer)),
            announce=True, describe=lambda r: r.status,
        )  # fmt: skip

    async def query_refund(
        self, account: WechatAccount, order_no: str, out_refund_no: str
    ) -> Done[RefundResult] | Rejected | Unknown:
        path = f"/v3/refund/domestic/refunds/{quote(out_refund_no, safe='')}"
        query = {"sub_mchid": account.mchid} if account.mode is WechatMode.PARTNER else {}
        return await self._call(
            "QueryRefund", account, order_no, "GET", path, query, None,
            lambda answer: _same("out_refund_no", out_refund_no, _refund(answer)),
            describe=lambda r: r.status,
        )  # fmt: skip

    async def download_trade_bill(
        self, account: WechatAccount, bill_date: str, *, deadline: float | None = None
    ) -> Done[TradeBill] | Rejected | Unknown:
        """The day's trade bill (``bill_date`` YYYY-MM-DD): ``GET /v3/bill/tradebill`` (signed,
        verified), then its ``download_url`` (signed; the file is not, its digest is checked).
        Not an order's call: no timeline row, one attempt within ``deadline`` (default: the
        policy's)."""
        limit = deadline or self._policy.deadline
        started = time.perf_counter()
        query = {"bill_date": bill_date}
        if account.mode is WechatMode.PARTNER:
            query["sub_mchid"] = account.mchid
        try:
            async with asyncio.timeout(limit):
                keys, mchid = self._signer(account)
                answer = await self._request(keys, mchid, "GET", "/v3/bill/tradebill", query, None, limit)
                document = answer.document if isinstance(answer.document, dict) else {}
                url = str(document.get("download_url", ""))
                path_with_query = self._own_path(url)
                hash_type, hash_value = (
                    str(document.get("hash_type", "")),
                    str(document.get("hash_value", "")),
                )
                content = await self._download(keys, mchid, path_with_query, limit)
        except RemoteFailure as failure:
            return _with_latency(failure.outcome, started)
        except TimeoutError:
            return Unknown("DEADLINE_EXCEEDED", "client timeout", _ms(started))
        if not _digest_matches(hash_type, hash_value, content):
            return Unknown(BAD_RESPONSE, f"the bill's {hash_type or 'digest'} does not match", _ms(started))
        return Done(TradeBill(hash_type, hash_value, url, content), _ms(started))

    # --- plumbing ---------------------------------------------------------------------------

    async def _call(
        self,
        rpc: str,
        account: WechatAccount,
        order_no: str,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: Mapping[str, Any] | None,
        convert: Callable[[_Answer], V],
        *,
        announce: bool = False,
        describe: Callable[[V], str] | None = None,
    ) -> Done[V] | Rejected | Unknown:
        async def attempt(deadline: float) -> V:
            async with asyncio.timeout(deadline):
                keys, mchid = self._signer(account)
                return convert(await self._request(keys, mchid, method, path, query, body, deadline))

        return await with_retries(
            PAYMENT_METHODS + rpc,
            order_no,
            attempt,
            self._policy,
            self._timeline,
            announce=announce,
            describe=describe,
        )

    def _signer(self, account: WechatAccount) -> tuple[SigningKeys, str]:
        """The bundle and mchid a request for ``account`` is signed with."""
        if account.mode is WechatMode.DIRECT:
            if not account.keys_dir:
                raise RemoteFailure(
                    Rejected(
                        "FAILED_PRECONDITION", "NO_MERCHANT_KEYS", "direct merchant without keys_dir", 0.0
                    )
                )
            return self._bundle(account.keys_dir), account.mchid
        return self._bundle(self._keys_dir), self._sp_mchid

    def _bundle(self, keys_dir: str) -> SigningKeys:
        keys = self._keys.get(keys_dir)
        if keys is None:
            try:
                keys = load_signing_keys(keys_dir)
            except (OSError, ValueError) as exc:  # nothing was sent: tried again next call
                raise RemoteFailure(Unknown("KEYS_UNAVAILABLE", f"merchant keys: {exc}", 0.0)) from None
            self._keys[keys_dir] = keys
        return keys

    async def _request(
        self,
        keys: SigningKeys,
        mchid: str,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: Mapping[str, Any] | None,
        deadline: float,
    ) -> _Answer:
        path_with_query = path + (f"?{urlencode(dict(query))}" if query else "")
        payload = (
            b"" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        )
        headers = {
            "Authorization": crypto.authorization(
                keys.private_key_pem, mchid, keys.serial_no, method, path_with_query, payload,
                timestamp=int(self._clock()),
            ),
            "Accept": "application/json",
            "User-Agent": "recharge-center/wechatpay-v3",
        }  # fmt: skip
        if body is not None:
            headers["Content-Type"] = "application/json"
        status, response_headers, content = await self._send(
            method, path_with_query, headers, payload, deadline
        )
        if not self._verified(keys, response_headers, content):
            raise RemoteFailure(Unknown(RESPONSE_UNVERIFIED, _unverified(status, content), 0.0))
        return _answer(status, content)

    async def _send(
        self, method: str, path_with_query: str, headers: dict[str, str], payload: bytes, deadline: float
    ) -> tuple[int, httpx.Headers, bytes]:
        try:
            request = self._http.build_request(
                method, self._base_url + path_with_query, headers=headers, content=payload or None,
                timeout=httpx.Timeout(deadline),
            )  # fmt: skip
            response = await self._http.send(request, stream=True)
            try:
                content = await _read_capped(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise RemoteFailure(
                Unknown("DEADLINE_EXCEEDED", f"HTTP timeout: {type(exc).__name__}", 0.0)
            ) from None
        except httpx.HTTPError as exc:  # connection refused or reset, TLS verification, protocol
            raise RemoteFailure(Unknown("UNAVAILABLE", f"HTTP transport: {_describe(exc)}", 0.0)) from None
        return response.status_code, response.headers, content

    def _verified(self, keys: SigningKeys, headers: httpx.Headers, content: bytes) -> bool:
        fields = {name: value for name, value in headers.items() if name.lower().startswith("wechatpay-")}
        if not crypto.timestamp_is_fresh(
            crypto.header(fields, crypto.HEADER_TIMESTAMP), self._clock(), self._max_skew_s
        ):
            return False
        return crypto.verify_headers(
            keys.platform_public_key_pem, keys.platform_public_key_id, fields, content
        )

    def _own_path(self, url: str) -> str:
        """The path and query of a download URL on our base URL's origin (a signed request goes
        nowhere else)."""
        parts, base = urlsplit(url), urlsplit(self._base_url)
        if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or not parts.path:
            raise RemoteFailure(Unknown(BAD_RESPONSE, "download_url is not on the API's origin", 0.0))
        return parts.path + (f"?{parts.query}" if parts.query else "")

    async def _download(self, keys: SigningKeys, mchid: str, path_with_query: str, deadline: float) -> bytes:
        headers = {
            "Authorization": crypto.authorization(
                keys.private_key_pem, mchid, keys.serial_no, "GET", path_with_query, b"",
                timestamp=int(self._clock()),
            ),
        }  # fmt: skip
        status, response_headers, content = await self._send("GET", path_with_query, headers, b"", deadline)
        if 200 <= status < 300:
            return content  # the file is not signed: its digest is checked instead
        if not self._verified(keys, response_headers, content):
            raise RemoteFailure(
                Unknown(RESPONSE_UNVERIFIED, f"HTTP {status}: the response signature does not verify", 0.0)
            )
        _answer(status, content)
        raise RemoteFailure(Unknown(BAD_RESPONSE, f"HTTP {status}", 0.0))


def _unverified(status: int, content: bytes) -> str:
    """What an answer we cannot believe said, for the timeline and the log only."""
    said = ""
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        document = loads_json(content[:1024].decode("utf-8"))
        if isinstance(document, dict):
            said = f" (it says {str(document.get('code', ''))[:64]})"
    detail = f"HTTP {status}{said}: the response signature does not verify"
    if status == 401:  # WeChat signs no answer to a request whose signature it refused
        detail += (
            "; WeChat refused our request signature: check apiclient_key.pem, apiclient_serial.txt "
            "and the mchid (--wechat-mchid, or the direct merchant's)"
        )
    return detail


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise RemoteFailure(
                Unknown(BAD_RESPONSE, f"response larger than {MAX_RESPONSE_BYTES} bytes", 0.0)
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status: int, content: bytes) -> _Answer:
    """A verified response: the 2xx answer, or a ``RemoteFailure`` saying what the error means."""
    document: Any = None
    if content:
        try:
            document = loads_json(content.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            if 200 <= status < 300:
                raise RemoteFailure(
                    Unknown(BAD_RESPONSE, f"HTTP {status}: the body is not JSON", 0.0)
                ) from None
    if 200 <= status < 300:
        return _Answer(status, document, content)
    error = document if isinstance(document, dict) else {}
    code, message = str(error.get("code", ""))[:64], str(error.get("message", ""))[:512]
    code = CODE_ALIASES.get(code, code)
    refusal = REFUSAL_STATUS.get(status)
    if refusal is not None and code in BUSINESS_CODES:
        refusal = "FAILED_PRECONDITION"
    elif refusal is not None and code in NOT_FOUND_CODES:
        refusal = "NOT_FOUND"
    if refusal is None or not code or code in UNKNOWN_CODES:
        raise RemoteFailure(
            Unknown(code or f"HTTP_{status}", f"HTTP {status} {code}: {message}".strip(), 0.0)
        )
    if status == 403 and code in PERMISSION_CODES:
        refusal = "PERMISSION_DENIED"
    raise RemoteFailure(Rejected(refusal, code, message, 0.0))


def _object(answer: _Answer) -> dict[str, Any]:
    if not isinstance(answer.document, dict):
        raise RemoteFailure(Unknown(BAD_RESPONSE, f"HTTP {answer.status}: expected a JSON object", 0.0))
    return answer.document


def _field(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise RemoteFailure(Unknown(BAD_RESPONSE, f"the answer has no {name}", 0.0))
    return value


def _prepay_id(answer: _Answer) -> str:
    return _field(_object(answer), "prepay_id")


def _transaction(answer: _Answer) -> PaymentTransaction:
    document = _object(answer)
    amount = document.get("amount")
    total = amount.get("total", 0) if isinstance(amount, dict) else 0
    if not isinstance(total, int) or isinstance(total, bool):
        raise RemoteFailure(Unknown(BAD_RESPONSE, "amount.total is not an integer", 0.0))
    return PaymentTransaction(
        out_trade_no=_field(document, "out_trade_no"),
        transaction_id=str(document.get("transaction_id") or ""),
        trade_state=_field(document, "trade_state"),
        amount_total_fen=total,
        success_time=str(document.get("success_time") or ""),
    )


def _refund(answer: _Answer) -> RefundResult:
    document = _object(answer)
    amount = document.get("amount")
    refunded = amount.get("refund", 0) if isinstance(amount, dict) else 0
    return RefundResult(
        out_refund_no=_field(document, "out_refund_no"),
        refund_id=str(document.get("refund_id") or ""),
        status=_field(document, "status"),
        refund_fen=refunded if isinstance(refunded, int) and not isinstance(refunded, bool) else 0,
    )


R = TypeVar("R", PaymentTransaction, RefundResult)


def _same(name: str, asked: str, answer: R) -> R:
    """An answer about another trade or refund than the one asked for proves nothing."""
    if getattr(answer, name) != asked:
        raise RemoteFailure(
            Unknown(BAD_RESPONSE, f"asked for {name} {asked}, the answer is about another", 0.0)
        )
    return answer


def _digest_matches(hash_type: str, hash_value: str, content: bytes) -> bool:
    algorithm = {"SHA1": "sha1", "SHA256": "sha256"}.get(hash_type.upper())
    if algorithm is None or not hash_value:
        return False
    return hashlib.new(algorithm, content).hexdigest().lower() == hash_value.lower()


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _with_latency(outcome: Rejected | Unknown, started: float) -> Rejected | Unknown:
    if isinstance(outcome, Rejected):
        return Rejected(outcome.code, outcome.reason, outcome.detail, _ms(started))
    return Unknown(outcome.code, outcome.detail, _ms(started))
