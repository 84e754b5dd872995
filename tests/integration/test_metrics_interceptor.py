"""ServerMetricsInterceptor on a real grpc.aio server (127.0.0.1:0): each call is counted once
under the code the client saw — OK, an abort's code, UNKNOWN for an exception that escapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from rc_common.access import ServerSecurity
from rc_common.metrics import ServerMetricsInterceptor, metrics
from rc_common.policy import OPEN
from rc_common.server import GrpcServer, create_server

SERVICE = "metricstest.v1.Echo"
METHOD = f"/{SERVICE}/Echo"


async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    if request == b"abort":
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "told to")
    if request == b"raise":
        raise RuntimeError("a bug")
    return request


def register(server: grpc.aio.Server) -> str:
    handler = grpc.unary_unary_rpc_method_handler(echo)  # bytes in, bytes out
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler}),))
    return SERVICE


@pytest.fixture
async def server() -> AsyncIterator[GrpcServer]:
    built = create_server(
        "127.0.0.1:0",
        [register],
        interceptors=[ServerMetricsInterceptor()],
        security=ServerSecurity(policy={f"/{SERVICE}/": OPEN}),
    )
    await built.start()
    yield built
    await built.stop(0.5)


def handled(code: str) -> float:
    value = metrics().registry.get_sample_value(
        "rc_grpc_server_handled_total", {"grpc_method": METHOD, "grpc_code": code}
    )
    return value or 0.0


async def test_each_call_is_counted_once_under_the_code_the_client_saw(server: GrpcServer) -> None:
    before = {code: handled(code) for code in ("OK", "FAILED_PRECONDITION", "UNKNOWN")}
    seen: list[Any] = []
    async with grpc.aio.insecure_channel(server.address) as channel:
        call = channel.unary_unary(METHOD)
        for request in (b"hello", b"abort", b"raise", b"again"):
            try:
                await call(request, timeout=5)
                seen.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as error:
                seen.append(error.code())
    assert seen == [
        grpc.StatusCode.OK,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.OK,
    ]
    after = {code: handled(code) for code in before}
    assert {code: after[code] - before[code] for code in before} == {
        "OK": 2,
        "FAILED_PRECONDITION": 1,
        "UNKNOWN": 1,
    }
    count = metrics().registry.get_sample_value(
        "rc_grpc_server_handling_seconds_count", {"grpc_method": METHOD}
    )
    assert count is not None and count >= 4
