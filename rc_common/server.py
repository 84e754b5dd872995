"""The one gRPC server factory, used by every ``main`` and by the tests.

``create_server`` registers the given services plus health checking and server reflection on a
``grpc.aio`` server bound to ``listen`` (``127.0.0.1:0`` picks a free port). ``GrpcServer.start``
marks every service SERVING; ``stop`` enters graceful shutdown (NOT_SERVING), then stops with grace.

Every server enforces the policy table (``rc_common.access.AccessInterceptor``, always first) and
serves mutual TLS when ``security.tls`` is set; without TLS it refuses any non-loopback address.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rc_common.access import AccessInterceptor, ServerSecurity
from rc_common.logs import get_logger
from rc_common.tls import require_loopback_when_plaintext, server_credentials

log = get_logger("server")

#: Adds one servicer to the server; returns the full service name it serves.
Registrar = Callable[[grpc.aio.Server], str]


@dataclass
class GrpcServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    services: tuple[str, ...]
    address: str
    #: The policy interceptor (its ``refusals`` count refused calls).
    access: AccessInterceptor
    on_stop: list[Callable[[], object]] = field(default_factory=list)

    async def start(self) -> None:
        await self.server.start()
        for name in (*self.services, ""):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("server_started", address=self.address, port=self.port, services=self.services)

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        for callback in self.on_stop:
            result = callback()
            if asyncio.iscoroutine(result):
                await result
        log.info("server_stopped", address=self.address)


def create_server(
    listen: str,
    registrars: Sequence[Registrar],
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    security: ServerSecurity | None = None,
) -> GrpcServer:
    """Build (not start) a server with health, reflection and the given services, the policy
    interceptor before ``interceptors``. ``security``: TLS and the token key (default: development
    mode). Raises ``TlsConfigError`` for a plaintext server on a non-loopback address."""
    security = security or ServerSecurity()
    require_loopback_when_plaintext(listen, security.tls)
    access = AccessInterceptor(security)
    server = grpc.aio.server(
        interceptors=[access, *interceptors],
        options=[("grpc.so_reuseport", 0)],
    )
    names = tuple(register(server) for register in registrars)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME),
        server,
    )
    if security.tls is not None:
        port = server.add_secure_port(listen, server_credentials(security.tls))
    else:
        port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot bind {listen}")
    host = listen.rpartition(":")[0]
    return GrpcServer(server, port, health_servicer, names, f"{host}:{port}", access)


async def wait_for_signal() -> str:
    """Block until SIGINT or SIGTERM; returns the signal's name."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[str] = loop.create_future()

    def on_signal(sig: signal.Signals) -> None:
        if not received.done():
            received.set_result(sig.name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await received
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
