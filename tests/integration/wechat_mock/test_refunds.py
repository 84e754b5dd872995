"""Refunds against a running simulator: accepted as PROCESSING, settled after --refund-delay,
idempotent by out_refund_no, never more than was paid, and the refund faults."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import grpc
import pytest

from protos.wechatpay.v1 import wechatpay_pb2 as pb
from rc_common.grpc_status import error_field, error_reason
from tests.integration.wechat_mock.conftest import Launcher
from tests.integration.wechat_mock.fakes import FakeMerchant, Stubs, rule
from tests.waiting import eventually
from wechat_mock.adapters.keys import PlatformKeys

CREATE_REFUND = "/wechatpay.v1.PaymentGateway/CreateRefund"


async def refused(awaitable: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await awaitable
    return caught.value


async def status_of(stubs: Stubs, out_refund_no: str) -> int:
    return (await stubs.query_refund(out_refund_no)).status


async def test_refund_is_processing_then_success_after_the_refund_delay(stubs: Stubs) -> None:
    paid = await stubs.paid("RF-0001")
    accepted = await stubs.refund("RF-0001", "RF-0001-r", 100)
    assert accepted.status == pb.REFUND_STATUS_PROCESSING
    assert accepted.refund_id.startswith("50") and accepted.refund_id.isdigit()
    assert accepted.transaction_id == paid.transaction_id
    assert accepted.create_time.endswith("+08:00")
    await eventually(lambda: _is(stubs, "RF-0001-r", pb.REFUND_STATUS_SUCCESS))
    settled = await stubs.query_refund("RF-0001-r")
    assert settled.success_time.endswith("+08:00")
    order = await stubs.query("RF-0001")
    assert order.trade_state == pb.TRADE_STATE_REFUND
    assert order.refunded_fen == 100


async def _is(stubs: Stubs, out_refund_no: str, status: int) -> bool:
    return await status_of(stubs, out_refund_no) == status


async def test_the_same_out_refund_no_refunds_once(stubs: Stubs) -> None:
    await stubs.paid("RF-0002")
    first = await stubs.refund("RF-0002", "RF-0002-r", 60)
    again = await stubs.refund("RF-0002", "RF-0002-r", 60)
    assert again.refund_id == first.refund_id
    await eventually(lambda: _is(stubs, "RF-0002-r", pb.REFUND_STATUS_SUCCESS))
    after = await stubs.refund("RF-0002", "RF-0002-r", 60)
    assert after.refund_id == first.refund_id
    assert after.status == pb.REFUND_STATUS_SUCCESS
    assert (await stubs.query("RF-0002")).refunded_fen == 60


async def test_concurrent_retries_of_one_out_refund_no_make_one_refund(stubs: Stubs) -> None:
    await stubs.paid("RF-0003")
    answers = await asyncio.gather(*(stubs.refund("RF-0003", "RF-0003-r", 100) for _ in range(8)))
    assert len({a.refund_id for a in answers}) == 1
    await eventually(lambda: _is(stubs, "RF-0003-r", pb.REFUND_STATUS_SUCCESS))
    assert (await stubs.query("RF-0003")).refunded_fen == 100


async def test_same_out_refund_no_with_other_parameters_is_refused(stubs: Stubs) -> None:
    await stubs.paid("RF-0004")
    await stubs.refund("RF-0004", "RF-0004-r", 50)
    error = await refused(stubs.refund("RF-0004", "RF-0004-r", 40))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "REFUND_NO_CONFLICT")


async def test_refunds_never_exceed_what_was_paid(stubs: Stubs) -> None:
    await stubs.paid("RF-0005")
    await stubs.refund("RF-0005", "RF-0005-a", 70)
    error = await refused(stubs.refund("RF-0005", "RF-0005-b", 31))
    assert error_reason(error) == "NOT_ENOUGH"
    await stubs.refund("RF-0005", "RF-0005-c", 30)
    error = await refused(stubs.refund("RF-0005", "RF-0005-d", 1))
    assert error_reason(error) == "NOT_ENOUGH"
    await eventually(lambda: _is(stubs, "RF-0005-c", pb.REFUND_STATUS_SUCCESS))
    await eventually(lambda: _is(stubs, "RF-0005-a", pb.REFUND_STATUS_SUCCESS))
    assert (await stubs.query("RF-0005")).refunded_fen == 100


async def test_concurrent_refunds_with_new_numbers_never_exceed_the_amount(stubs: Stubs) -> None:
    await stubs.paid("RF-0006")
    results = await asyncio.gather(
        *(stubs.refund("RF-0006", f"RF-0006-{i}", 30) for i in range(6)), return_exceptions=True
    )
    accepted = [r for r in results if isinstance(r, pb.Refund)]
    refusals = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(accepted) == 3
    assert {error_reason(e) for e in refusals} == {"NOT_ENOUGH"}


async def test_refund_of_an_unpaid_order_is_refused(stubs: Stubs) -> None:
    await stubs.prepay("RF-0007")
    error = await refused(stubs.refund("RF-0007", "RF-0007-r", 100))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "TRADE_NOT_PAID")


@pytest.mark.parametrize(
    ("out_refund_no", "refund_fen", "total_fen", "field"),
    [
        ("", 100, 100, "out_refund_no"),
        ("r" * 65, 100, 100, "out_refund_no"),
        ("bad refund no", 100, 100, "out_refund_no"),
        ("RF-0008-r", 0, 100, "refund_fen"),
        ("RF-0008-r", 100, 99, "total_fen"),
    ],
)
async def test_bad_refund_input_is_invalid_argument_naming_the_field(
    stubs: Stubs, out_refund_no: str, refund_fen: int, total_fen: int, field: str
) -> None:
    await stubs.paid("RF-0008")
    error = await refused(stubs.refund("RF-0008", out_refund_no, refund_fen, total_fen))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_field(error) == field


async def test_unknown_order_or_refund_is_not_found(stubs: Stubs) -> None:
    error = await refused(stubs.refund("RF-9999", "RF-9999-r", 100))
    assert error.code() is grpc.StatusCode.NOT_FOUND and "ORDER_NOT_EXIST" in (error.details() or "")
    error = await refused(stubs.query_refund("nope"))
    assert error.code() is grpc.StatusCode.NOT_FOUND and "RESOURCE_NOT_EXISTS" in (error.details() or "")


async def test_refund_processing_fault_keeps_the_refund_processing_for_the_rules_delay(
    launch: Launcher, merchant: FakeMerchant
) -> None:
    wechat = await launch(refund_delay=0.05)
    stubs = wechat.stubs
    await stubs.set_faults(rule(CREATE_REFUND, "REFUND_PROCESSING", delay_ms=1500, times=1))
    await stubs.paid("RF-0010")
    await stubs.paid("RF-0011")
    slow = await stubs.refund("RF-0010", "RF-0010-r", 100)
    fast = await stubs.refund("RF-0011", "RF-0011-r", 100)
    await eventually(lambda: _is(stubs, "RF-0011-r", pb.REFUND_STATUS_SUCCESS))
    # The normal refund settled; the faulted one, accepted first, is still PROCESSING.
    assert await status_of(stubs, slow.out_refund_no) == pb.REFUND_STATUS_PROCESSING
    assert fast.status == pb.REFUND_STATUS_PROCESSING
    await eventually(lambda: _is(stubs, "RF-0010-r", pb.REFUND_STATUS_SUCCESS))
    events = await merchant.wait_for(lambda items: len(merchant.of("REFUND.SUCCESS")) >= 2)
    refund_events = [e.plain(wechat.simulator.keys.apiv3_key)["out_refund_no"] for e in events
                     if e.event_type == "REFUND.SUCCESS"]
    assert refund_events[:2] == ["RF-0011-r", "RF-0010-r"]


async def test_refund_abnormal_fault_ends_abnormal_with_a_refund_abnormal_notification(
    wechat: object, stubs: Stubs, merchant: FakeMerchant, keys: PlatformKeys
) -> None:
    await stubs.set_faults(rule(CREATE_REFUND, "REFUND_ABNORMAL", times=1))
    await stubs.paid("RF-0012")
    accepted = await stubs.refund("RF-0012", "RF-0012-r", 100)
    assert accepted.status == pb.REFUND_STATUS_PROCESSING
    await eventually(lambda: _is(stubs, "RF-0012-r", pb.REFUND_STATUS_ABNORMAL))
    await merchant.wait_for(lambda _items: bool(merchant.of("REFUND.ABNORMAL")))
    plain = merchant.of("REFUND.ABNORMAL")[0].plain(keys.apiv3_key)
    assert plain["refund_status"] == "ABNORMAL"
    assert "success_time" not in plain
    order = await stubs.query("RF-0012")
    assert order.trade_state == pb.TRADE_STATE_SUCCESS and order.refunded_fen == 0
    # The abnormal refund still holds its amount: a new refund number cannot take it again.
    error = await refused(stubs.refund("RF-0012", "RF-0012-r2", 1))
    assert error_reason(error) == "NOT_ENOUGH"


async def settle(stubs: Stubs, out_refund_no: str, status: int) -> pb.Refund:
    request = pb.SettleRefundRequest(out_refund_no=out_refund_no, status=status)
    return await stubs.payer.SettleRefund(request, timeout=5)


async def test_bank_closes_a_refund_which_frees_its_amount_and_notifies_refund_closed(
    launch: Launcher, merchant: FakeMerchant
) -> None:
    wechat = await launch(refund_delay=30)
    stubs = wechat.stubs
    await stubs.paid("RF-0020")
    await stubs.refund("RF-0020", "RF-0020-a", 100)
    closed = await settle(stubs, "RF-0020-a", pb.REFUND_STATUS_CLOSED)
    assert closed.status == pb.REFUND_STATUS_CLOSED and closed.success_time == ""
    await merchant.wait_for(lambda _items: bool(merchant.of("REFUND.CLOSED")))
    plain = merchant.of("REFUND.CLOSED")[0].plain(wechat.simulator.keys.apiv3_key)
    assert plain["refund_status"] == "CLOSED"
    assert (await stubs.query("RF-0020")).trade_state == pb.TRADE_STATE_SUCCESS
    again = await stubs.refund("RF-0020", "RF-0020-b", 100)  # the closed refund holds nothing
    done = await settle(stubs, again.out_refund_no, pb.REFUND_STATUS_SUCCESS)
    assert done.status == pb.REFUND_STATUS_SUCCESS
    # Settling a settled refund changes nothing.
    assert (await settle(stubs, "RF-0020-a", pb.REFUND_STATUS_SUCCESS)).status == pb.REFUND_STATUS_CLOSED
    assert (await stubs.query("RF-0020")).refunded_fen == 100


async def test_settling_with_processing_is_invalid(stubs: Stubs) -> None:
    error = await refused(settle(stubs, "whatever", pb.REFUND_STATUS_PROCESSING))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and error_field(error) == "status"
