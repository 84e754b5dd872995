"""The console's composition root: settings in, a running HTTP(S) server out.

``build_console`` reads the auth key and opens the one channel to the recharge center (mutual
TLS with ``--tls-dir``'s files, else plaintext); ``ConsoleServer`` binds ``--listen`` (HTTPS with
``tls.crt``/``tls.key`` of the same directory, else plain HTTP on a loopback address only) and
logs ``server_started`` with the port and URL; ``serve`` runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

from aiohttp import web

from rc_common.auth import load_key
from rc_common.channels import ClientAuth, aio_channel
from rc_common.server import wait_for_signal
from rc_common.settings import parse_listen
from rc_common.tls import TlsConfigError, load_optional, plaintext_refusal
from recharge_service.console.accounts import AccountBook
from recharge_service.console.backend import Backend
from recharge_service.console.pages import ALL
from recharge_service.console.sessions import SessionStore
from recharge_service.console.settings import ConsoleSettings
from recharge_service.console.throttle import LoginThrottle
from recharge_service.console.web import Console, log, make_app, template_environment
from recharge_service.entrypoints.notify_http import server_tls


def build_console(settings: ConsoleSettings) -> Console:
    key = load_key(settings.auth_key_file)
    channel = aio_channel(settings.target, ClientAuth(load_optional(settings.tls_dir)))
    accounts = AccountBook(settings.accounts_file)
    if not accounts.all():  # a malformed file refuses the start here, not at the first login
        log.warning(
            "no_operators",
            accounts_file=settings.accounts_file,
            hint="python -m recharge_service.console --accounts-file FILE add-operator NAME --role operator",
        )
    return Console(
        settings=settings,
        accounts=accounts,
        sessions=SessionStore(
            idle=settings.session.idle,
            lifetime=settings.session.lifetime,
            max_sessions=settings.session.max_sessions,
        ),
        throttle=LoginThrottle(
            max_failures=settings.login.max_failures,
            lockout=settings.login.lockout,
            lockout_max=settings.login.lockout_max,
        ),
        backend=Backend(channel, key, settings.calls),
        templates=template_environment(),
    )


class ConsoleServer:
    """``start`` binds (``port`` is the bound one; ``url`` where browsers go), ``stop`` closes."""

    def __init__(self, console: Console) -> None:
        settings = console.settings
        host, self._port = parse_listen(settings.listen)
        self._host = host.strip("[]")
        self._tls = server_tls(settings.tls_dir) if settings.tls_dir else None
        if self._tls is None and plaintext_refusal(settings.listen):
            raise TlsConfigError(plaintext_refusal(settings.listen))
        self.console = console
        self._runner = web.AppRunner(make_app(console, ALL), access_log=None, shutdown_timeout=settings.grace)
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{scheme}://{host}:{self.port}/"

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=self._tls)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self._port
        log.info("server_started", port=self.port, url=self.url, target=self.console.settings.target)

    async def stop(self) -> None:
        await self._runner.cleanup()
        await self.console.backend.close()
        log.info("server_stopped", url=self.url)


async def serve(settings: ConsoleSettings) -> None:
    server = ConsoleServer(build_console(settings))
    await server.start()
    try:
        signal_name = await wait_for_signal()
        log.info("stopping", signal=signal_name)
    finally:
        await server.stop()
