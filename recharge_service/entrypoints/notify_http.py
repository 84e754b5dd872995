"""WeChat Pay's notifications over HTTP(S): ``POST <path>`` (aiohttp.web), the same service-layer
code as ``PaymentNotifications.Notify`` (``handle_notification`` with the same opener).

Answers the way WeChat reads them: **204, no body** once the notification is recorded (or was
already); otherwise a 4xx/5xx with ``{"code": "FAIL", "message": …}`` and nothing changed, so
WeChat delivers it again — 400 for a notification that does not open (signature, timestamp,
serial, body), 500 when it could not be recorded, 413 for a body over the cap (not read), 408 for
one that does not arrive in time, 405/404 for another method or path.

Served over TLS with ``tls.crt``/``tls.key`` of ``--notify-http-tls-dir`` (WeChat presents no client
certificate: the notification's own signature is what is checked); without one only on a loopback
address (``rc_common.tls.plaintext_refusal``), e.g. behind a TLS-terminating proxy on the same host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from rc_common.errors import InvalidArgument
from rc_common.logs import get_logger
from rc_common.settings import parse_listen
from rc_common.tls import CERT_FILE, KEY_FILE, TlsConfigError, plaintext_refusal
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.notifications import (
    FAIL,
    SUCCESS,
    Ack,
    NotificationOpener,
    handle_notification,
)

log = get_logger("notify_http")

#: Refusals that are the notification's fault (the rest: ours, 500).
_NOT_RECORDED = "could not record"
_JSON = "application/json"
_MAX_HEADERS = 64


@dataclass(frozen=True)
class NotifyHttpPolicy:
    path: str = "/wechatpay/notify"
    max_body: int = 65536
    read_timeout: float = 10.0
    #: Admission, as the gRPC Notify's (``--admission-overrides`` Notify=…, ``--max-queue-wait``):
    #: at most ``concurrent`` handled at once, ``queued`` more waiting up to ``queue_wait`` seconds;
    #: beyond that 503 FAIL at once (WeChat delivers it again). ``concurrent`` 0: not gated.
    concurrent: int = 256
    queued: int = 1024
    queue_wait: float = 1.0


class _Admission:
    """A burst is shed, not absorbed: ``concurrent`` slots, at most ``queued`` waiters."""

    def __init__(self, policy: NotifyHttpPolicy) -> None:
        self._policy = policy
        self._slots = asyncio.Semaphore(max(policy.concurrent, 1))
        self._inside = 0  # running plus waiting

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[bool]:
        if self._policy.concurrent <= 0:
            yield True
            return
        if self._inside >= self._policy.concurrent + self._policy.queued:
            yield False
            return
        self._inside += 1
        try:
            try:
                async with asyncio.timeout(self._policy.queue_wait):
                    await self._slots.acquire()
            except TimeoutError:
                yield False
                return
            try:
                yield True
            finally:
                self._slots.release()
        finally:
            self._inside -= 1


def fail(status: int, message: str) -> web.Response:
    body = json.dumps({"code": FAIL, "message": message}, ensure_ascii=False)
    return web.Response(status=status, text=body, content_type=_JSON)


def make_app(deps: Deps, opener: NotificationOpener, policy: NotifyHttpPolicy) -> web.Application:
    admission = _Admission(policy)

    async def notify(request: web.Request) -> web.StreamResponse:
        async with admission.admitted() as admitted:
            if not admitted:
                response = fail(503, "OVERLOADED: too many notifications at once; retry later")
                response.force_close()
                return response
            return await handle(request)

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > policy.max_body:
            return _refuse_unread(request, policy.max_body)
        body = bytearray()
        try:
            async with asyncio.timeout(policy.read_timeout):
                while chunk := await request.content.read(policy.max_body + 1 - len(body)):
                    body += chunk  # a chunked body has no Content-Length: counted as it comes
                    if len(body) > policy.max_body:
                        return _refuse_unread(request, policy.max_body)
        except TimeoutError:
            response = fail(408, f"the body did not arrive within {policy.read_timeout:g}s")
            response.force_close()  # the rest of the body is not read: this connection is not reused
            return response
        if len(request.headers) > _MAX_HEADERS:
            return fail(400, "too many headers")
        headers = {name: value for name, value in request.headers.items()}
        try:
            ack = await handle_notification(deps, opener, headers, bytes(body))
        except InvalidArgument as exc:
            ack = Ack(FAIL, exc.message)
        except Exception:  # last resort: WeChat must read SUCCESS or FAIL, never a stack trace
            log.exception("notification_failed", transport="http")
            return fail(500, "could not handle the notification; retry later")
        if ack.code == SUCCESS:
            return web.Response(status=204)
        return fail(500 if ack.message.startswith(_NOT_RECORDED) else 400, ack.message or "refused")

    async def other_method(_request: web.Request) -> web.StreamResponse:
        return fail(405, "POST only")

    app = web.Application(client_max_size=policy.max_body)
    app.router.add_post(policy.path, notify)
    app.router.add_route("*", policy.path, other_method)
    return app


def _refuse_unread(request: web.Request, max_body: int) -> web.Response:
    response = fail(413, f"the body is larger than {max_body} bytes")
    response.force_close()  # the rest of the body is not read: this connection is not reused
    return response


def server_tls(tls_dir: str) -> ssl.SSLContext:
    """TLS for the notification endpoint: ``tls.crt`` (with its chain) and ``tls.key``."""
    folder = Path(tls_dir)
    for name in (CERT_FILE, KEY_FILE):
        path = folder / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TlsConfigError(f"TLS directory {folder}: cannot read {name} ({exc.strerror})") from None
        if b"-----BEGIN" not in data:
            raise TlsConfigError(f"TLS directory {folder}: {name} holds no PEM block")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(folder / CERT_FILE, folder / KEY_FILE)
    return context


class NotifyHttpServer:
    """The endpoint's lifecycle: ``start`` binds (``port`` is the bound one), ``stop`` closes."""

    def __init__(
        self,
        deps: Deps,
        opener: NotificationOpener,
        listen: str,
        policy: NotifyHttpPolicy,
        tls_dir: str = "",
        grace: float = 5.0,
    ) -> None:
        self._host, self._port = parse_listen(listen)
        self._host = self._host.strip("[]")
        self._tls = server_tls(tls_dir) if tls_dir else None
        if self._tls is None:
            refusal = plaintext_refusal(listen)
            if refusal:
                raise TlsConfigError(refusal.replace("--tls-dir", "--notify-http-tls-dir"))
        self._runner = web.AppRunner(
            make_app(deps, opener, policy),
            access_log=None,
            shutdown_timeout=grace,  # in-flight notifications finish within it on stop
            lingering_time=policy.read_timeout,  # a refused body is drained no longer than it may take
        )
        self.port = 0
        self._started = False

    @property
    def scheme(self) -> str:
        return "https" if self._tls is not None else "http"

    async def start(self) -> None:
        await self._runner.setup()
        self._started = True
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=self._tls)
        await site.start()
        addresses = self._runner.addresses  # the bound port (tests listen on :0)
        self.port = int(addresses[0][1]) if addresses else self._port
        log.info("notify_http_started", host=self._host, port=self.port, scheme=self.scheme)

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        await self._runner.cleanup()
        log.info("notify_http_stopped", host=self._host, port=self.port)
