"""The facade's requests as WeChat sends them: bodies, JSON fields and query parameters checked
against WeChat's limits, and its error answers (:class:`ApiError`, ``{"code", "message"}``)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from rc_common.validation import loads_json
from wechat_mock.domain.merchants import MerchantRef

#: The largest request body accepted (WeChat's requests are a few hundred bytes).
MAX_BODY = 64 * 1024
#: Widths of the request's strings (WeChat's documented limits, within our columns).
LIMITS = {
    "appid": 32,
    "sp_appid": 32,
    "sub_appid": 32,
    "mchid": 32,
    "sp_mchid": 32,
    "sub_mchid": 32,
    "description": 127,
    "out_trade_no": 32,
    "out_refund_no": 64,
    "time_expire": 64,
    "attach": 128,
    "notify_url": 256,
    "openid": 128,
    "sp_openid": 128,
    "sub_openid": 128,
    "reason": 80,
    "currency": 16,
    "transaction_id": 32,
}
INT64_MAX = 2**63 - 1


class ApiError(Exception):
    """An answer of WeChat's error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def param_error(field: str, message: str) -> ApiError:
    return ApiError(400, "PARAM_ERROR", f"{field}: {message}")


async def read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(400, "PARAM_ERROR", f"body: larger than {MAX_BODY} bytes") from None


def json_object(body: bytes) -> Mapping[str, Any]:
    try:
        doc = loads_json(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "INVALID_REQUEST", f"body: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "INVALID_REQUEST", "body: must be a JSON object")
    return doc


def member_object(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = doc.get(name)
    if not isinstance(value, dict):
        raise param_error(name, "required: a JSON object")
    return value


def check_text(value: str, field: str, limit: int) -> str:
    if "\x00" in value:
        raise param_error(field, "must not contain NUL")
    if len(value) > limit:
        raise param_error(field, f"at most {limit} characters")
    return value


def text(doc: Mapping[str, Any], name: str, field: str = "", *, required: bool = False) -> str:
    field = field or name
    value = doc.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise param_error(field, "must be a string")
    if required and not value:
        raise param_error(field, "required")
    return check_text(value, field, LIMITS.get(name, 256))


def query_text(request: web.Request, name: str, *, required: bool = False) -> str:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise param_error(name, "given more than once")
    value = values[0] if values else ""
    if required and not value:
        raise param_error(name, "required")
    return check_text(value, name, LIMITS.get(name, 256))


def fen(doc: Mapping[str, Any], name: str, field: str) -> int:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise param_error(field, "required: an integer number of fen")
    if not 1 <= value <= INT64_MAX:
        raise param_error(field, "must be at least 1 fen")
    return value


def currency(amount: Mapping[str, Any]) -> None:
    currency = text(amount, "currency", "amount.currency") or "CNY"
    if currency != "CNY":
        raise param_error("amount.currency", "only CNY")


def to_json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def bill_token(bill_date: str, merchant: MerchantRef, *, gzipped: bool) -> str:
    """Names the bill (not a secret: its download is a signed request of the same merchant)."""
    fields = {"d": bill_date, "m": merchant.mchid, "s": merchant.sp_mchid, "u": merchant.sub_mchid}
    raw = to_json({**fields, "z": gzipped})
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def read_bill_token(token: str) -> tuple[str, MerchantRef, bool]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = loads_json(raw)
        fields = (doc["d"], doc["m"], doc["s"], doc["u"])
        gzipped = doc["z"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise param_error("token", "not a bill download token") from None
    if not all(isinstance(f, str) for f in fields) or not isinstance(gzipped, bool):
        raise param_error("token", "not a bill download token")
    return fields[0], MerchantRef(mchid=fields[1], sp_mchid=fields[2], sub_mchid=fields[3]), gzipped


class Admission:
    """At most ``max_concurrent`` requests run at once, ``max_queued`` more wait up to
    ``max_queue_wait_s``; the rest are answered at once 429 FREQUENCY_LIMITED (shed, not
    absorbed). ``max_concurrent`` 0: no limit."""

    def __init__(self, max_concurrent: int, max_queued: int, max_queue_wait_s: float) -> None:
        self._slots = asyncio.Semaphore(max_concurrent) if max_concurrent > 0 else None
        self._room = max_concurrent + max_queued
        self._wait_s = max_queue_wait_s
        self._admitted = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots is None:
            yield
            return
        if self._admitted >= self._room:
            raise _shed()
        self._admitted += 1
        try:
            try:
                await asyncio.wait_for(self._slots.acquire(), self._wait_s)
            except TimeoutError:
                raise ApiError(
                    429, "FREQUENCY_LIMITED", "too many requests at once, try again later"
                ) from None
            try:
                yield
            finally:
                self._slots.release()
        finally:
            self._admitted -= 1


def _shed() -> ApiError:
    return ApiError(429, "FREQUENCY_LIMITED", "too many requests at once, try again later")
