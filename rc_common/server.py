"""The one gRPC server factory, used by every ``main`` and by the tests.

``create_server`` registers the given services plus health checking and server reflection on a
``grpc.aio`` server bound to ``listen`` (``127.0.0.1:0`` picks a free port). ``GrpcServer.start``
marks every service SERVING; ``stop`` enters graceful shutdown (NOT_SERVING), then stops with grace.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rc_common.logs import get_logger

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
) -> GrpcServer:
    """Build (not start) a server with health, reflection and the given services."""
    server = grpc.aio.server(
        interceptors=list(interceptors),
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
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot bind {listen}")
    host = listen.rpartition(":")[0]
    return GrpcServer(server, port, health_servicer, names, f"{host}:{port}")


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
