"""Admission control (``rc_common/admission.py``) on a real grpc.aio server bound to 127.0.0.1:0:
a full method is answered RESOURCE_EXHAUSTED OVERLOADED at once, other methods and health checks are
not held up, a caller who gave up while queued is never started, and the handler sees its caller's
deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rc_common import admission
from rc_common.access import ServerSecurity
from rc_common.admission import AdmissionInterceptor, AdmissionPolicy, Limit, parse_overrides
from rc_common.grpc_status import error_reason
from rc_common.policy import OPEN, POLICY
from rc_common.server import GrpcServer, create_server
from tests.waiting import eventually

SLOW = "/test.Slow/Call"
OTHER = "/test.Other/Call"


@dataclass
class Handlers:
    """Two methods over raw bytes: ``SLOW`` waits for ``gate``; both count the calls they start and
    note the caller's remaining time as the handler saw it."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    started: dict[str, int] = field(default_factory=lambda: {SLOW: 0, OTHER: 0})
    remaining: list[float | None] = field(default_factory=list)

    def register(self, server: grpc.aio.Server) -> str:
        def handler(method: str) -> grpc.RpcMethodHandler:
            async def call(request: bytes, context: Any) -> bytes:
                self.started[method] += 1
                self.remaining.append(admission.remaining())
                if method == SLOW:
                    await self.gate.wait()
                return request

            return grpc.unary_unary_rpc_method_handler(call)

        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler("test.Slow", {"Call": handler(SLOW)}),
                grpc.method_handlers_generic_handler("test.Other", {"Call": handler(OTHER)}),
            )
        )
        return "test.Slow"


@pytest.fixture
def handlers() -> Handlers:
    return Handlers()


@pytest.fixture
async def server(handlers: Handlers) -> AsyncIterator[tuple[GrpcServer, AdmissionInterceptor]]:
    interceptor = AdmissionInterceptor(AdmissionPolicy(Limit(2, 1), queue_wait=5.0))
    # The test's own services are open to anybody (the policy table is not what is tested here).
    security = ServerSecurity(policy={**POLICY, "/test.Slow/": OPEN, "/test.Other/": OPEN})
    built = create_server("127.0.0.1:0", [handlers.register], interceptors=[interceptor], security=security)
    await built.start()
    try:
        yield built, interceptor
    finally:
        handlers.gate.set()
        await built.stop(0.5)


async def call(channel: grpc.aio.Channel, method: str, deadline: float = 10.0) -> bytes:
    result: bytes = await channel.unary_unary(method)(b"x", timeout=deadline)
    return result


async def until(condition: Any) -> None:
    await eventually(lambda: condition() or None, within=10)


async def test_a_full_method_sheds_calls_at_once_and_serves_the_admitted_ones(
    server: tuple[GrpcServer, AdmissionInterceptor], handlers: Handlers
) -> None:
    built, interceptor = server
    async with grpc.aio.insecure_channel(built.address) as channel:
        admitted = [asyncio.create_task(call(channel, SLOW)) for _ in range(3)]  # 2 running, 1 queued
        await until(lambda: handlers.started[SLOW] == 2)
        await asyncio.sleep(0.05)  # the third is in the queue by now (or being shed: either fails below)
        shed = await asyncio.gather(*(call(channel, SLOW) for _ in range(4)), return_exceptions=True)
        for error in shed:
            assert isinstance(error, grpc.aio.AioRpcError)
            assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert error_reason(error) == admission.OVERLOADED
            assert "Error" not in (error.details() or "")  # our reason, no exception names
        assert interceptor.shed[SLOW] == 4
        handlers.gate.set()
        assert await asyncio.gather(*admitted) == [b"x"] * 3
    assert handlers.started[SLOW] == 3  # the shed calls never ran


async def test_another_method_and_health_checks_are_served_while_one_method_is_full(
    server: tuple[GrpcServer, AdmissionInterceptor], handlers: Handlers
) -> None:
    built, _ = server
    async with grpc.aio.insecure_channel(built.address) as channel:
        busy = [asyncio.create_task(call(channel, SLOW)) for _ in range(3)]
        await until(lambda: handlers.started[SLOW] == 2)
        assert await call(channel, OTHER) == b"x"
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        handlers.gate.set()
        await asyncio.gather(*busy)


async def test_a_caller_who_gave_up_while_queued_is_never_started(
    server: tuple[GrpcServer, AdmissionInterceptor], handlers: Handlers
) -> None:
    built, interceptor = server
    async with grpc.aio.insecure_channel(built.address) as channel:
        busy = [asyncio.create_task(call(channel, SLOW)) for _ in range(2)]
        await until(lambda: handlers.started[SLOW] == 2)
        with pytest.raises(grpc.aio.AioRpcError) as gone:  # queued behind them, gives up first
            await call(channel, SLOW, deadline=0.3)
        assert gone.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED)
        waiting = interceptor._gates[SLOW]._waiters  # the server's side of the deadline passed too
        await until(lambda: all(slot.done() for slot in waiting))
        handlers.gate.set()
        await asyncio.gather(*busy)
        assert await call(channel, SLOW) == b"x"  # the slot it waited for went to the next caller
    assert handlers.started[SLOW] == 3


class PastDeadline:
    """The context of a call that arrived after its caller's deadline (a loaded server)."""

    def __init__(self) -> None:
        self.aborted: list[grpc.StatusCode] = []

    def time_remaining(self) -> float:
        return -0.01

    def cancelled(self) -> bool:
        return False

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted.append(code)
        raise grpc.aio.AbortError(details)


@pytest.mark.parametrize("drop_gone", [True, False])
async def test_a_call_arriving_past_its_deadline_is_dropped_except_by_a_simulator(drop_gone: bool) -> None:
    ran: list[bytes] = []

    async def inner(request: bytes, context: Any) -> bytes:
        ran.append(request)
        return request

    interceptor = AdmissionInterceptor(AdmissionPolicy(Limit(1, 1), queue_wait=1.0), drop_gone=drop_gone)
    context = PastDeadline()
    try:
        await interceptor._run(inner, b"x", context)  # type: ignore[arg-type]
    except grpc.aio.AbortError:
        pass
    if drop_gone:  # the recharge center: nobody waits for it, so it is not started
        assert (ran, context.aborted) == ([], [grpc.StatusCode.DEADLINE_EXCEEDED])
    else:  # a simulated system processes it anyway (its late successes must stay real)
        assert (ran, context.aborted) == ([b"x"], [])


async def test_the_handler_sees_its_callers_remaining_time_and_none_without_a_deadline(
    server: tuple[GrpcServer, AdmissionInterceptor], handlers: Handlers
) -> None:
    built, _ = server
    async with grpc.aio.insecure_channel(built.address) as channel:
        await call(channel, OTHER, deadline=3.0)
        result: bytes = await channel.unary_unary(OTHER)(b"x")  # no deadline at all
        assert result == b"x"
    with_deadline, without = handlers.remaining
    assert with_deadline is not None and 0 < with_deadline <= 3.5  # the wire rounds the timeout up
    assert without is None
    assert admission.remaining() is None  # nothing leaks out of the call


def test_overrides_name_methods_and_bad_ones_are_refused_naming_the_setting() -> None:
    policy = AdmissionPolicy.of(8, 16, 1.0, "Notify=256/1024, /test.Slow/Call=0/0")
    assert policy.limit_for("/wechatpay.v1.PaymentNotifications/Notify") == Limit(256, 1024)
    assert policy.limit_for("/recharge.v1.RechargeCenter/CreateRechargeOrder") == Limit(8, 16)
    assert policy.limit_for(SLOW) is None  # 0 concurrent: not gated
    with pytest.raises(ValueError, match="admission_overrides"):
        parse_overrides("Notify=lots")


def test_budget_is_the_setting_or_less_when_the_caller_leaves_sooner() -> None:
    assert admission.budget(3.0, 0.2) == 3.0  # no caller deadline: the setting
    with admission.serving(1.0):
        assert 0 < admission.budget(3.0, 0.2) <= 0.8
        assert admission.budget(0.1, 0.2) == 0.1
    with admission.serving(0.1):
        assert admission.budget(3.0, 0.2) <= 0  # do not start
    assert admission.remaining() is None
