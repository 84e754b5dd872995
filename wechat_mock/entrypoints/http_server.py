"""The facade listening: an aiohttp runner on ``--http-listen``, over TLS unless plain HTTP on
loopback was asked for (``bootstrap`` decides)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from aiohttp import web

from rc_common.logs import get_logger
from wechat_mock.entrypoints.http_api import ApiV3

log = get_logger("wechat.http")


@dataclass
class HttpServer:
    """The facade listening (``start`` binds, ``address`` is then host:port)."""

    api: ApiV3
    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None
    _runner: web.AppRunner | None = None

    @property
    def scheme(self) -> str:
        return "http" if self.ssl_context is None else "https"

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.api.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        for address in self._runner.addresses:
            self.port = int(address[1])
            break
        log.info("http_started", url=self.base_url)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        await self.api.drain()
