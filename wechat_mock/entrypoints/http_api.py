"""The WeChat Pay APIv3 facade: WeChat's own HTTP wire (``--http-listen``) over the same use cases
the gRPC ``PaymentGateway`` servicer calls (``service_layer.payments``, ``refunds``, ``bills``).

Every request must carry the merchant's ``Authorization`` (``WECHATPAY2-SHA256-RSA2048``): the
mchid a merchant account known here (the service provider's, or a direct merchant's), ``serial_no``
that merchant's certificate serial, the signature valid with that certificate over
``METHOD\\nPATH?QUERY\\ntimestamp\\nnonce\\nbody\\n`` (the path as sent), the timestamp within
``--http-max-clock-skew``; anything else is ``401 {"code":"SIGN_ERROR"}``. Every answer (errors
too; not the bill file) is signed with the platform key of the account that asked
(``Wechatpay-Timestamp/-Nonce/-Serial/-Signature/-Signature-Type``).

Routes (direct mode: the requesting mchid is the merchant; partner mode: it is the sp_mchid and
the request names the sub_mchid)::

    POST /v3/pay/transactions/jsapi                          -> 200 {prepay_id}
    POST /v3/pay/partner/transactions/jsapi                  -> 200 {prepay_id}
    GET  /v3/pay/[partner/]transactions/out-trade-no/{no}    -> 200 transaction
    POST /v3/pay/[partner/]transactions/out-trade-no/{no}/close -> 204
    POST /v3/refund/domestic/refunds                         -> 200 refund
    GET  /v3/refund/domestic/refunds/{out_refund_no}         -> 200 refund
    GET  /v3/bill/tradebill?bill_date=YYYY-MM-DD             -> 200 {hash_type, hash_value, download_url}
    GET  /v3/billdownload/file?token=…                       -> 200 the bill (CSV, not signed)

Errors are WeChat's: ``{"code", "message"}`` with 400 PARAM_ERROR (the message names the field),
400 APPID_MCHID_NOT_MATCH, 400 ORDER_CLOSED, 401 SIGN_ERROR, 403 with the refusal's code (ORDER_PAID,
NOT_ENOUGH, OUT_TRADE_NO_USED, TRADE_NOT_PAID, REFUND_NO_CONFLICT, NO_AUTH), 404 ORDER_NOT_EXIST /
RESOURCE_NOT_EXISTS, 429 FREQUENCY_LIMITED (overload), 500 SYSTEM_ERROR.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from rc_common import wechatpay_crypto as crypto
from rc_common.errors import Exhausted, InvalidArgument, NotFound, Refused, ServiceError
from rc_common.faults import FaultKind
from rc_common.faults.interceptor import TRANSPORT_KINDS
from rc_common.logs import get_logger
from wechat_mock.domain.merchants import MerchantRef
from wechat_mock.entrypoints.http_documents import bill_file, refund_document, transaction_document
from wechat_mock.entrypoints.http_requests import (
    MAX_BODY,
    Admission,
    ApiError,
    bill_token,
    currency,
    fen,
    json_object,
    member_object,
    param_error,
    query_text,
    read_bill_token,
    read_body,
    text,
    to_json,
)
from wechat_mock.service_layer import bills, commands, payments, refunds
from wechat_mock.service_layer.context import Context

log = get_logger("wechat.http")

#: Fault rules name the facade's routes by the gRPC method each one is.
GATEWAY = "/wechatpay.v1.PaymentGateway"
#: WeChat's HTTP status of a refusal, where it is not 403 (its documentation's error tables).
REFUSAL_STATUS = {"ORDER_CLOSED": 400}
#: The use cases' field names as WeChat's JSON names them (PARAM_ERROR messages).
FIELD_NAMES = {
    "amount_total_fen": "amount.total",
    "refund_fen": "amount.refund",
    "total_fen": "amount.total",
    "payer_openid": "payer.openid",
    "merchant": "mchid",
    "merchant.mchid": "mchid",
    "merchant.sp_mchid": "sp_mchid",
    "merchant.sub_mchid": "sub_mchid",
}

Handler = Callable[["Caller", web.Request, bytes], Coroutine[Any, Any, "Answer"]]


@dataclass(frozen=True)
class MerchantAccount:
    """A merchant account as WeChat holds it: its certificate (verifies its requests) and the
    platform keys its answers are signed with."""

    mchid: str
    cert_pem: bytes
    serial_no: str
    private_key_pem: bytes
    public_key_id: str


@dataclass(frozen=True)
class Caller:
    account: MerchantAccount
    #: True when it is the service provider (partner mode), False for a direct merchant.
    is_provider: bool


@dataclass(frozen=True)
class Answer:
    status: int
    payload: Mapping[str, Any] | None = None


class ApiV3:
    """The aiohttp application of the facade."""

    def __init__(
        self,
        ctx: Context,
        provider: MerchantAccount,
        direct: Mapping[str, MerchantAccount],
        *,
        max_clock_skew_s: float,
        max_concurrent: int = 0,
        max_queued: int = 0,
        max_queue_wait_s: float = 2.0,
    ) -> None:
        self._ctx = ctx
        self._provider = provider
        self._accounts = {provider.mchid: provider, **direct}
        self._skew = max_clock_skew_s
        self._admission = Admission(max_concurrent, max_queued, max_queue_wait_s)
        self._background: set[asyncio.Future[None]] = set()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._unrouted])
        route = self._route
        add_get, add_post = app.router.add_get, app.router.add_post
        add_post("/v3/pay/transactions/jsapi", route(self._prepay_direct, "CreatePrepay"))
        add_post("/v3/pay/partner/transactions/jsapi", route(self._prepay_partner, "CreatePrepay"))
        add_get("/v3/pay/transactions/out-trade-no/{no}", route(self._query_direct, "QueryOrder"))
        add_get("/v3/pay/partner/transactions/out-trade-no/{no}", route(self._query_partner, "QueryOrder"))
        add_post("/v3/pay/transactions/out-trade-no/{no}/close", route(self._close_direct, "CloseOrder"))
        add_post(
            "/v3/pay/partner/transactions/out-trade-no/{no}/close", route(self._close_partner, "CloseOrder")
        )
        add_post("/v3/refund/domestic/refunds", route(self._refund, "CreateRefund"))
        add_get("/v3/refund/domestic/refunds/{no}", route(self._query_refund, "QueryRefund"))
        add_get("/v3/bill/tradebill", route(self._trade_bill, "DownloadTradeBill"))
        app.router.add_get("/v3/billdownload/file", self._download_bill)
        return app

    # -- the envelope: admission, authentication, errors, signature --------------------------

    @web.middleware
    async def _unrouted(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """No such path (404) or method (405): WeChat's error shape, signed, not aiohttp's text."""
        try:
            return await handler(request)
        except web.HTTPNotFound:
            answer = Answer(404, {"code": "NOT_FOUND", "message": f"no API at {request.path[:200]}"})
        except web.HTTPMethodNotAllowed:
            answer = Answer(
                405, {"code": "INVALID_REQUEST", "message": f"{request.method[:16]} not allowed here"}
            )
        return self._signed(self._provider, answer)

    def _route(self, handler: Handler, rpc: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``rpc``: the PaymentGateway method this route is (fault rules name it)."""
        method = f"{GATEWAY}/{rpc}"

        async def serve(request: web.Request) -> web.StreamResponse:
            account = self._provider
            try:
                async with self._admission.slot():
                    body = await read_body(request)
                    caller = self._authenticate(request, body)
                    account = caller.account
                    answer = await self._faulted(method, handler(caller, request, body))
            except ApiError as error:
                answer = Answer(error.status, {"code": error.code, "message": error.message})
                if error.status >= 500 or error.code == "SIGN_ERROR":
                    log.info("http_refused", path=request.path, status=error.status, code=error.code)
            except Exception:  # a bug here: WeChat's generic answer (an unknown outcome), logged
                log.exception("http_request_failed", path=request.path)
                answer = Answer(500, {"code": "SYSTEM_ERROR", "message": "system error, try again"})
            return self._signed(account, answer)

        return serve

    async def _faulted(self, method: str, work: Coroutine[Any, Any, Answer]) -> Answer:
        """The transport faults of the gRPC servicer, on the HTTP wire (the same rules and
        method names, so one fault plan drives both): UNAVAILABLE / OUTAGE answer 500
        SYSTEM_ERROR before doing anything; DELAY waits first; LOST_RESPONSE does the work, then
        answers 500 SYSTEM_ERROR (its answer is lost); LATE_SUCCESS does it ``delay_ms`` later,
        holding the answer until then, and answers 500 SYSTEM_ERROR."""
        rule = self._ctx.faults.draw(method, TRANSPORT_KINDS)
        if rule is None:
            return await work
        log.info("fault_injected", method=method, kind=rule.kind.name, delay_ms=rule.delay_ms, wire="http")
        if rule.kind in (FaultKind.UNAVAILABLE, FaultKind.OUTAGE):
            work.close()
            raise ApiError(500, "SYSTEM_ERROR", f"injected {rule.kind.name}")
        if rule.kind is FaultKind.DELAY:
            await asyncio.sleep(rule.delay_s)
            return await work
        if rule.kind is FaultKind.LATE_SUCCESS:
            await asyncio.sleep(rule.delay_s)
        task = asyncio.ensure_future(_lost(work))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        await asyncio.shield(task)
        raise ApiError(500, "SYSTEM_ERROR", f"injected {rule.kind.name}: processed, answer lost")

    async def drain(self) -> None:
        """Wait for work whose answer a fault lost (shutdown, tests)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _signed(self, account: MerchantAccount, answer: Answer) -> web.Response:
        body = b"" if answer.payload is None else to_json(answer.payload)
        headers = crypto.signed_headers(
            account.private_key_pem,
            account.public_key_id,
            body,
            timestamp=int(self._ctx.clock().timestamp()),
        )
        headers["Request-ID"] = crypto.new_nonce(24)
        if answer.payload is None:
            return web.Response(status=answer.status, headers=headers)
        return web.Response(
            status=answer.status, body=body, headers=headers, content_type="application/json", charset="utf-8"
        )

    def _authenticate(self, request: web.Request, body: bytes) -> Caller:
        signed = crypto.parse_authorization(request.headers.get("Authorization", ""))
        if signed is None:
            raise ApiError(401, "SIGN_ERROR", "Authorization missing or not WECHATPAY2-SHA256-RSA2048")
        account = self._accounts.get(signed.mchid)
        if account is None:
            raise ApiError(401, "SIGN_ERROR", f"mchid {signed.mchid[:32]} is not a merchant here")
        if signed.serial_no.upper() != account.serial_no.upper():
            raise ApiError(401, "SIGN_ERROR", "serial_no is not the merchant's certificate serial")
        if not crypto.timestamp_is_fresh(signed.timestamp, self._ctx.clock().timestamp(), self._skew):
            raise ApiError(401, "SIGN_ERROR", "timestamp too old or too new")
        if not crypto.verify_request(account.cert_pem, signed, request.method, request.raw_path, body):
            raise ApiError(401, "SIGN_ERROR", "signature does not verify with the merchant's certificate")
        return Caller(account, is_provider=account is self._provider)

    async def _use_case(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except InvalidArgument as exc:
            field = FIELD_NAMES.get(exc.field, exc.field)
            raise param_error(field, exc.message.partition(": ")[2] or exc.message) from None
        except NotFound as exc:
            code, sep, _ = exc.message.partition(":")
            code = code if sep and code.isupper() else "RESOURCE_NOT_EXISTS"
            raise ApiError(404, code, exc.message) from None
        except Refused as exc:
            raise ApiError(REFUSAL_STATUS.get(exc.reason, 403), exc.reason, exc.message) from None
        except Exhausted as exc:
            raise ApiError(429, "FREQUENCY_LIMITED", exc.message) from None
        except ServiceError as exc:
            raise ApiError(500, "SYSTEM_ERROR", exc.message) from None
        except Exception:
            log.exception("http_handler_failed")
            raise ApiError(500, "SYSTEM_ERROR", "system error, try again") from None

    # -- whom a request acts for ------------------------------------------------------------

    def _direct(self, caller: Caller, mchid: str) -> MerchantRef:
        if caller.is_provider:
            raise ApiError(403, "NO_AUTH", "the service provider uses the /v3/pay/partner/ paths")
        if mchid != caller.account.mchid:
            raise param_error("mchid", "must be the mchid of the Authorization")
        return MerchantRef(mchid=mchid)

    def _partner(self, caller: Caller, sp_mchid: str, sub_mchid: str) -> MerchantRef:
        if not caller.is_provider:
            raise ApiError(403, "NO_AUTH", "a direct merchant uses the /v3/pay/transactions/ paths")
        if sp_mchid != caller.account.mchid:
            raise param_error("sp_mchid", "must be the mchid of the Authorization")
        if not sub_mchid:
            raise param_error("sub_mchid", "required")
        return MerchantRef(sp_mchid=sp_mchid, sub_mchid=sub_mchid)

    def _partner_of(self, caller: Caller, doc: Mapping[str, Any]) -> MerchantRef:
        sp_mchid = text(doc, "sp_mchid", required=True)
        return self._partner(caller, sp_mchid, text(doc, "sub_mchid", required=True))

    def _either(self, caller: Caller, sub_mchid: str) -> MerchantRef:
        """Refunds and bills: the provider names the sub_mchid; a direct merchant none."""
        if caller.is_provider:
            return self._partner(caller, caller.account.mchid, sub_mchid)
        if sub_mchid:
            raise param_error("sub_mchid", "only a service provider names a sub_mchid")
        return MerchantRef(mchid=caller.account.mchid)

    def _check_appid(self, merchant: MerchantRef, appid: str) -> None:
        try:
            known = self._ctx.accounts.appid(self._ctx.accounts.require(merchant))
        except InvalidArgument as exc:
            raise param_error(FIELD_NAMES.get(exc.field, exc.field), exc.message) from None
        if appid != known:
            raise ApiError(400, "APPID_MCHID_NOT_MATCH", "appid and mchid do not match")

    # -- the routes --------------------------------------------------------------------------

    async def _prepay(self, merchant: MerchantRef, doc: Mapping[str, Any], openid: str) -> Answer:
        amount = member_object(doc, "amount")
        currency(amount)
        command = commands.CreatePrepay(
            out_trade_no=text(doc, "out_trade_no", required=True),
            description=text(doc, "description", required=True),
            amount_total_fen=fen(amount, "total", "amount.total"),
            payer_openid=openid,
            time_expire=text(doc, "time_expire"),
            attach=text(doc, "attach"),
            merchant=merchant,
            notify_url=text(doc, "notify_url", required=True),
        )
        order = await self._use_case(payments.create_prepay(command, self._ctx))
        return Answer(200, {"prepay_id": order.prepay_id})

    async def _prepay_direct(self, caller: Caller, request: web.Request, body: bytes) -> Answer:
        doc = json_object(body)
        merchant = self._direct(caller, text(doc, "mchid", required=True))
        self._check_appid(merchant, text(doc, "appid", required=True))
        payer = member_object(doc, "payer")
        return await self._prepay(merchant, doc, text(payer, "openid", "payer.openid", required=True))

    async def _prepay_partner(self, caller: Caller, request: web.Request, body: bytes) -> Answer:
        doc = json_object(body)
        merchant = self._partner_of(caller, doc)
        self._check_appid(merchant, text(doc, "sp_appid", required=True))
        text(doc, "sub_appid")
        payer = member_object(doc, "payer")
        sp_openid = text(payer, "sp_openid", "payer.sp_openid")
        if not sp_openid and text(payer, "sub_openid", "payer.sub_openid"):
            raise param_error("payer.sub_openid", "not simulated: send payer.sp_openid")
        if not sp_openid:
            raise param_error("payer.sp_openid", "required")
        return await self._prepay(merchant, doc, sp_openid)

    async def _query(self, merchant: MerchantRef, request: web.Request) -> Answer:
        no = request.match_info["no"]
        order = await self._use_case(payments.query_order(no, merchant, self._ctx))
        return Answer(200, transaction_document(order))

    async def _query_direct(self, caller: Caller, request: web.Request, body: bytes) -> Answer:
        return await self._query(self._direct(caller, query_text(request, "mchid", required=True)), request)

    async def _query_partner(self, caller: Caller, request: web.Request, body: bytes) -> Answer:
        ref = self._partner(
            caller,
            query_text(request, "sp_mchid", required=True),
            query_text(request, "sub_mchid", required=True),
        )
        return await self._query(ref, request)

    async def _close(self, merchant: MerchantRef, request: web.Request) -> Answer:
        command = commands.CloseOrder(request.match_info["no"], merchant)
        await self._use_case(payments.close_order(command, self._ctx))
        return Answer(204)

    async def _close_direct(self, caller: Caller, request: web.Request, body: bytes) -> Answer:
        doc = json_object(body)
        return await self._close(self._direct(caller, text(doc, "mchid", required=True)), request)

    async def _close_partner(self, caller: Caller, request: web.Request, body: bytes) -> Answer:
        doc = json_object(body)
        return await self._close(self._partner_of(caller, doc), request)

    async def _refund(self, caller: Caller, request: web.Request, body: bytes) -> Answer:
        doc = json_object(body)
        merchant = self._either(caller, text(doc, "sub_mchid"))
        out_trade_no = text(doc, "out_trade_no")
        if not out_trade_no:
            which = "required (refunds by transaction_id alone are not simulated)"
            raise param_error("out_trade_no", which)
        text(doc, "transaction_id")
        amount = member_object(doc, "amount")
        currency(amount)
        command = commands.CreateRefund(
            out_trade_no=out_trade_no,
            out_refund_no=text(doc, "out_refund_no", required=True),
            refund_fen=fen(amount, "refund", "amount.refund"),
            total_fen=fen(amount, "total", "amount.total"),
            reason=text(doc, "reason"),
            merchant=merchant,
            notify_url=text(doc, "notify_url"),
        )
        refund = await self._use_case(refunds.create_refund(command, self._ctx))
        order = await self._use_case(payments.query_order(refund.out_trade_no, merchant, self._ctx))
        return Answer(200, refund_document(refund, order))

    async def _query_refund(self, caller: Caller, request: web.Request, body: bytes) -> Answer:
        merchant = self._either(caller, query_text(request, "sub_mchid"))
        no = request.match_info["no"]
        refund = await self._use_case(refunds.query_refund(no, merchant, self._ctx))
        order = await self._use_case(payments.query_order(refund.out_trade_no, merchant, self._ctx))
        return Answer(200, refund_document(refund, order))

    def _bill_merchant(self, caller: Caller, sub_mchid: str) -> MerchantRef:
        """Whose bill: a direct merchant's own; the provider's for one sub_mchid, or (none named)
        the provider's whole bill."""
        if caller.is_provider and not sub_mchid:
            return MerchantRef()
        return self._either(caller, sub_mchid)

    async def _trade_bill(self, caller: Caller, request: web.Request, body: bytes) -> Answer:
        merchant = self._bill_merchant(caller, query_text(request, "sub_mchid"))
        bill_date = query_text(request, "bill_date", required=True)
        bill_type = query_text(request, "bill_type") or "ALL"
        if bill_type != "ALL":
            raise param_error("bill_type", "only ALL is simulated")
        tar_type = query_text(request, "tar_type")
        if tar_type not in ("", "GZIP"):
            raise param_error("tar_type", "GZIP or none")
        bill = await self._use_case(bills.download_trade_bill(bill_date, merchant, self._ctx))
        content = bill_file(bill)  # the hash is of the bill itself, gzipped or not (as WeChat's)
        token = bill_token(bill_date, merchant, gzipped=tar_type == "GZIP")
        url = request.url.with_path("/v3/billdownload/file").with_query({"token": token})
        return Answer(
            200,
            {"hash_type": "SHA1", "hash_value": hashlib.sha1(content).hexdigest(), "download_url": str(url)},
        )

    async def _download_bill(self, request: web.Request) -> web.StreamResponse:
        """The bill file: the request is signed (as every request), the answer is not."""
        account = self._provider
        try:
            async with self._admission.slot():
                body = await read_body(request)
                caller = self._authenticate(request, body)
                account = caller.account
                token = query_text(request, "token", required=True)
                bill_date, merchant, gzipped = read_bill_token(token)
                if merchant != self._bill_merchant(caller, merchant.sub_mchid):
                    raise ApiError(403, "NO_AUTH", "the bill is another merchant's")
                bill = await self._use_case(bills.download_trade_bill(bill_date, merchant, self._ctx))
        except ApiError as error:
            return self._signed(account, Answer(error.status, {"code": error.code, "message": error.message}))
        content = bill_file(bill)
        if gzipped:
            packed = gzip.compress(content, mtime=0)
            return web.Response(status=200, body=packed, content_type="application/gzip")
        return web.Response(status=200, body=content, content_type="text/plain", charset="utf-8")


async def _lost(work: Awaitable[Answer]) -> None:
    """Work whose answer is lost: a refusal or a success alike is only logged."""
    try:
        answer = await work
        log.info("fault_detached_answer_lost", status=answer.status)
    except ApiError as error:
        log.info("fault_detached_answer_lost", status=error.status, code=error.code)
