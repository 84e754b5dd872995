"""Transport faults seen from a real grpc.aio client against a real server on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from protos.card.v1 import card_pb2, card_pb2_grpc
from rc_common.channels import aio_channel
from rc_common.errors import Refused
from rc_common.faults import FaultEngine, FaultInterceptor, FaultKind, FaultPlan, FaultRule, hold_if_delayed
from rc_common.grpc_status import error_reason, maps_errors
from rc_common.server import GrpcServer, create_server
from tests import auth
from tests.waiting import eventually

OPEN = "/card.v1.CardAdmin/OpenCard"
FREEZE = "/card.v1.CardAdmin/FreezeCard"


class RecordingAdmin(card_pb2_grpc.CardAdminServicer):
    """OpenCard records each card it processed; FreezeCard always refuses; lock-aware hold."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.lock = asyncio.Lock()

    async def OpenCard(
        self, request: card_pb2.OpenCardRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.Card:
        async with self.lock:
            await hold_if_delayed()
            self.opened.append(request.card_no)
        return card_pb2.Card(card_no=request.card_no)

    @maps_errors
    async def FreezeCard(
        self, request: card_pb2.FreezeCardRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.Card:
        self.opened.append("freeze:" + request.card_no)
        raise Refused("CARD_CLOSED", "closed")


class Clock:
    """The fault engine's clock (outage windows are measured on it), moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    clock: Clock
    engine: FaultEngine
    servicer: RecordingAdmin
    stub: card_pb2_grpc.CardAdminStub
    interceptor: FaultInterceptor


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    clock = Clock()
    engine = FaultEngine(clock)
    servicer = RecordingAdmin()
    interceptor = FaultInterceptor(engine, lock_aware_methods={OPEN})

    def register(server: grpc.aio.Server) -> str:
        card_pb2_grpc.add_CardAdminServicer_to_server(servicer, server)
        return "card.v1.CardAdmin"

    served: GrpcServer = create_server(
        "127.0.0.1:0", [register], interceptors=[interceptor], security=auth.security()
    )
    await served.start()
    async with aio_channel(served.address, auth.client()) as channel:
        yield Harness(clock, engine, servicer, card_pb2_grpc.CardAdminStub(channel), interceptor)
    await served.stop(0)


def plan(*rules: FaultRule) -> FaultPlan:
    return FaultPlan(seed=1, rules=rules)


async def test_unavailable_refuses_before_doing_anything(harness: Harness) -> None:
    harness.engine.set_plan(plan(FaultRule(OPEN, FaultKind.UNAVAILABLE, times=1)))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.stub.OpenCard(card_pb2.OpenCardRequest(card_no="1"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert harness.servicer.opened == []
    await harness.stub.OpenCard(card_pb2.OpenCardRequest(card_no="2"), timeout=5)
    assert harness.servicer.opened == ["2"]


async def test_lost_response_processes_then_answers_unavailable(harness: Harness) -> None:
    harness.engine.set_plan(plan(FaultRule(OPEN, FaultKind.LOST_RESPONSE)))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.stub.OpenCard(card_pb2.OpenCardRequest(card_no="1"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert harness.servicer.opened == ["1"]


async def test_lost_response_also_loses_a_business_refusal(harness: Harness) -> None:
    harness.engine.set_plan(plan(FaultRule(FREEZE, FaultKind.LOST_RESPONSE)))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.stub.FreezeCard(card_pb2.FreezeCardRequest(card_no="9"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert harness.servicer.opened == ["freeze:9"]


async def test_refusals_carry_their_reason_without_faults(harness: Harness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.stub.FreezeCard(card_pb2.FreezeCardRequest(card_no="9"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "CARD_CLOSED"


async def test_late_success_times_out_the_caller_then_processes(harness: Harness) -> None:
    harness.engine.set_plan(plan(FaultRule(OPEN, FaultKind.LATE_SUCCESS, delay_ms=1000, times=1)))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.stub.OpenCard(card_pb2.OpenCardRequest(card_no="late"), timeout=0.1)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert harness.servicer.opened == []  # not yet: the caller gave up first
    await harness.interceptor.drain()
    assert harness.servicer.opened == ["late"]


async def test_delay_holds_the_service_lock_so_other_callers_queue(harness: Harness) -> None:
    harness.engine.set_plan(plan(FaultRule(OPEN, FaultKind.DELAY, delay_ms=300, times=1)))
    first = asyncio.ensure_future(harness.stub.OpenCard(card_pb2.OpenCardRequest(card_no="a"), timeout=5))
    await eventually(harness.servicer.lock.locked, what="the delayed first call holding the service lock")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        # The second caller waits behind the held lock and misses its short deadline.
        await harness.stub.OpenCard(card_pb2.OpenCardRequest(card_no="b"), timeout=0.05)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert (await first).card_no == "a"
    assert harness.servicer.opened[0] == "a"
    assert harness.engine.stats().counts == {(OPEN, FaultKind.DELAY): 1}


async def test_outage_fails_every_call_for_its_window(harness: Harness) -> None:
    harness.engine.set_plan(plan(FaultRule("*", FaultKind.OUTAGE, delay_ms=200)))
    for card_no in ("1", "2"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await harness.stub.OpenCard(card_pb2.OpenCardRequest(card_no=card_no), timeout=5)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    harness.clock.now += 0.2  # the window's end
    await harness.stub.OpenCard(card_pb2.OpenCardRequest(card_no="3"), timeout=5)
    assert harness.servicer.opened == ["3"]
