"""Transport faults (rc_common's FaultInterceptor) on the simulator's CloseOrder and CreateRefund:
what the caller sees, and what WeChat actually did."""

from __future__ import annotations

from collections.abc import Awaitable

import grpc
import pytest

from protos.faults.v1 import faults_pb2
from protos.wechatpay.v1 import wechatpay_pb2 as pb
from tests.integration.wechat_mock.fakes import Stubs, rule
from tests.waiting import eventually

CLOSE = "/wechatpay.v1.PaymentGateway/CloseOrder"
REFUND = "/wechatpay.v1.PaymentGateway/CreateRefund"


async def code_of(awaitable: Awaitable[object]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await awaitable
    return caught.value.code()


async def state_of(stubs: Stubs, out_trade_no: str) -> int:
    return (await stubs.query(out_trade_no)).trade_state


async def refund_exists(stubs: Stubs, out_refund_no: str) -> bool:
    try:
        await stubs.query_refund(out_refund_no)
    except grpc.aio.AioRpcError as error:
        assert error.code() is grpc.StatusCode.NOT_FOUND
        return False
    return True


async def test_unavailable_close_does_nothing(stubs: Stubs) -> None:
    await stubs.prepay("TF-0001")
    await stubs.set_faults(rule(CLOSE, "UNAVAILABLE", times=1))
    assert await code_of(stubs.close("TF-0001")) is grpc.StatusCode.UNAVAILABLE
    assert await state_of(stubs, "TF-0001") == pb.TRADE_STATE_NOTPAY
    assert (await stubs.close("TF-0001")).trade_state == pb.TRADE_STATE_CLOSED


async def test_lost_response_close_is_done_although_the_caller_saw_unavailable(stubs: Stubs) -> None:
    await stubs.prepay("TF-0002")
    await stubs.set_faults(rule(CLOSE, "LOST_RESPONSE", times=1))
    assert await code_of(stubs.close("TF-0002")) is grpc.StatusCode.UNAVAILABLE
    assert await state_of(stubs, "TF-0002") == pb.TRADE_STATE_CLOSED


async def test_late_success_close_is_processed_after_the_caller_gave_up(stubs: Stubs) -> None:
    await stubs.prepay("TF-0003")
    await stubs.set_faults(rule(CLOSE, "LATE_SUCCESS", delay_ms=800, times=1))
    assert await code_of(stubs.close("TF-0003", deadline_s=0.3)) is grpc.StatusCode.DEADLINE_EXCEEDED
    assert await state_of(stubs, "TF-0003") == pb.TRADE_STATE_NOTPAY
    await eventually(lambda: _state_is(stubs, "TF-0003", pb.TRADE_STATE_CLOSED))


async def _state_is(stubs: Stubs, out_trade_no: str, state: int) -> bool:
    return await state_of(stubs, out_trade_no) == state


async def test_late_success_close_of_a_paid_order_is_a_refusal_nobody_hears(stubs: Stubs) -> None:
    await stubs.paid("TF-0004")
    await stubs.set_faults(rule(CLOSE, "LATE_SUCCESS", delay_ms=300, times=1))
    assert await code_of(stubs.close("TF-0004", deadline_s=0.1)) is grpc.StatusCode.DEADLINE_EXCEEDED
    stats = await stubs.faults.GetFaultStats(faults_pb2.GetFaultStatsRequest(), timeout=5)
    assert stats.total == 1
    assert await state_of(stubs, "TF-0004") == pb.TRADE_STATE_SUCCESS


async def test_late_success_refund_is_accepted_after_the_caller_gave_up_and_a_retry_finds_it(
    stubs: Stubs,
) -> None:
    await stubs.paid("TF-0005")
    await stubs.set_faults(rule(REFUND, "LATE_SUCCESS", delay_ms=800, times=1))
    code = await code_of(stubs.refund("TF-0005", "TF-0005-r", 100, deadline_s=0.3))
    assert code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert not await refund_exists(stubs, "TF-0005-r")
    await eventually(lambda: refund_exists(stubs, "TF-0005-r"))
    late = await stubs.query_refund("TF-0005-r")
    retried = await stubs.refund("TF-0005", "TF-0005-r", 100)
    assert retried.refund_id == late.refund_id
    await eventually(lambda: _refunded(stubs, "TF-0005", 100))


async def _refunded(stubs: Stubs, out_trade_no: str, fen: int) -> bool:
    return (await stubs.query(out_trade_no)).refunded_fen == fen


async def test_lost_response_refund_is_accepted_and_the_retry_returns_the_same_refund(stubs: Stubs) -> None:
    await stubs.paid("TF-0006")
    await stubs.set_faults(rule(REFUND, "LOST_RESPONSE", times=1))
    assert await code_of(stubs.refund("TF-0006", "TF-0006-r", 100)) is grpc.StatusCode.UNAVAILABLE
    assert await refund_exists(stubs, "TF-0006-r")
    first = await stubs.query_refund("TF-0006-r")
    retried = await stubs.refund("TF-0006", "TF-0006-r", 100)
    assert retried.refund_id == first.refund_id
    await eventually(lambda: _refunded(stubs, "TF-0006", 100))


async def test_unavailable_refund_creates_nothing(stubs: Stubs) -> None:
    await stubs.paid("TF-0007")
    await stubs.set_faults(rule(REFUND, "UNAVAILABLE", times=1))
    assert await code_of(stubs.refund("TF-0007", "TF-0007-r", 100)) is grpc.StatusCode.UNAVAILABLE
    assert not await refund_exists(stubs, "TF-0007-r")


async def test_delayed_refund_answers_after_the_delay(stubs: Stubs) -> None:
    await stubs.paid("TF-0008")
    await stubs.set_faults(rule(REFUND, "DELAY", delay_ms=300, times=1))
    accepted = await stubs.refund("TF-0008", "TF-0008-r", 100)
    assert accepted.status == pb.REFUND_STATUS_PROCESSING
    stats = await stubs.faults.GetFaultStats(faults_pb2.GetFaultStatsRequest(), timeout=5)
    assert [(c.method, c.kind) for c in stats.counts] == [(REFUND, faults_pb2.FAULT_KIND_DELAY)]


async def test_outage_refuses_every_call_then_ends(stubs: Stubs) -> None:
    await stubs.prepay("TF-0009")
    await stubs.set_faults(rule("/wechatpay.v1.*", "OUTAGE", delay_ms=700))
    assert await code_of(stubs.close("TF-0009")) is grpc.StatusCode.UNAVAILABLE
    assert await code_of(stubs.query("TF-0009")) is grpc.StatusCode.UNAVAILABLE

    async def closes() -> bool:
        try:
            return (await stubs.close("TF-0009")).trade_state == pb.TRADE_STATE_CLOSED
        except grpc.aio.AioRpcError as error:
            assert error.code() is grpc.StatusCode.UNAVAILABLE
            return False

    await eventually(closes)
