"""Payment orders against a running simulator: prepay, pay, query, close, with WeChat's refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from protos.wechatpay.v1 import wechatpay_pb2 as pb
from rc_common.grpc_status import error_field, error_reason
from tests.integration.wechat_mock.conftest import Running
from tests.integration.wechat_mock.fakes import FakeMerchant, Stubs
from tests.waiting import eventually
from wechat_mock.domain.notifications import DeliveryStatus, Notification


async def refusal(awaitable: Awaitable[object]) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await awaitable
    error = caught.value
    return error.code(), error_reason(error), error.details() or ""


async def test_same_out_trade_no_and_parameters_returns_the_same_prepay_id(stubs: Stubs) -> None:
    first = await stubs.prepay("RC-0001", 100)
    again = await stubs.prepay("RC-0001", 100)
    assert first == again
    assert first.startswith("wx")


async def test_same_out_trade_no_with_other_parameters_is_refused(stubs: Stubs) -> None:
    await stubs.prepay("RC-0002", 100)
    code, reason, _ = await refusal(stubs.prepay("RC-0002", 200))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "OUT_TRADE_NO_USED")


@pytest.mark.parametrize(
    ("out_trade_no", "amount", "extra", "field"),
    [
        ("short", 100, {}, "out_trade_no"),
        ("has space 123", 100, {}, "out_trade_no"),
        ("x" * 33, 100, {}, "out_trade_no"),
        ("RC-0003", 0, {}, "amount_total_fen"),
        ("RC-0003", 100, {"time_expire": "2026-11-26 12:00:00"}, "time_expire"),
        ("RC-0003", 100, {"time_expire": "2026-11-26T12:00:00"}, "time_expire"),
    ],
)
async def test_bad_prepay_input_is_invalid_argument_naming_the_field(
    stubs: Stubs, out_trade_no: str, amount: int, extra: dict[str, str], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.prepay(out_trade_no, amount, **extra)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_field(caught.value) == field


async def test_out_trade_no_accepts_wechats_whole_character_set(stubs: Stubs) -> None:
    assert await stubs.prepay("Ab9_-|*x", 1)


async def test_pay_turns_notpay_into_success_with_a_wechat_transaction(stubs: Stubs) -> None:
    await stubs.prepay("RC-0010", 1234, time_expire="2099-01-01T00:00:00+08:00", attach="card=C1")
    before = await stubs.query("RC-0010")
    assert before.trade_state == pb.TRADE_STATE_NOTPAY
    assert before.transaction_id == ""
    assert before.time_expire == "2099-01-01T00:00:00+08:00"
    paid = await stubs.pay("RC-0010")
    assert paid.trade_state == pb.TRADE_STATE_SUCCESS
    assert len(paid.transaction_id) == 28 and paid.transaction_id.startswith("4200")
    assert paid.transaction_id.isdigit()
    assert paid.success_time.endswith("+08:00")
    assert datetime.fromisoformat(paid.success_time) > datetime.now(UTC) - timedelta(minutes=1)
    assert paid.trade_state_desc == "支付成功"
    queried = await stubs.query("RC-0010")
    assert (queried.transaction_id, queried.amount_total_fen) == (paid.transaction_id, 1234)


async def test_paying_twice_takes_the_money_once(stubs: Stubs) -> None:
    first = await stubs.paid("RC-0011")
    again = await stubs.pay("RC-0011")
    assert again.transaction_id == first.transaction_id
    assert again.success_time == first.success_time


async def test_pay_after_close_is_refused(stubs: Stubs) -> None:
    await stubs.prepay("RC-0012")
    await stubs.close("RC-0012")
    code, reason, _ = await refusal(stubs.pay("RC-0012"))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ORDER_CLOSED")
    assert (await stubs.query("RC-0012")).trade_state == pb.TRADE_STATE_CLOSED


async def test_pay_after_time_expire_is_refused_and_the_order_stays_notpay(stubs: Stubs) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    await stubs.prepay("RC-0013", time_expire=past)
    code, reason, _ = await refusal(stubs.pay("RC-0013"))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ORDER_EXPIRED")
    assert (await stubs.query("RC-0013")).trade_state == pb.TRADE_STATE_NOTPAY
    assert (await stubs.close("RC-0013")).trade_state == pb.TRADE_STATE_CLOSED


async def test_close_is_idempotent(stubs: Stubs) -> None:
    await stubs.prepay("RC-0014")
    first = await stubs.close("RC-0014")
    again = await stubs.close("RC-0014")
    assert first.trade_state == again.trade_state == pb.TRADE_STATE_CLOSED


async def test_close_of_a_paid_order_is_refused_with_order_paid(stubs: Stubs) -> None:
    await stubs.paid("RC-0015")
    code, reason, _ = await refusal(stubs.close("RC-0015"))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ORDER_PAID")
    assert (await stubs.query("RC-0015")).trade_state == pb.TRADE_STATE_SUCCESS


async def test_prepay_again_for_a_closed_or_paid_order_is_refused(stubs: Stubs) -> None:
    await stubs.prepay("RC-0016")
    await stubs.close("RC-0016")
    assert (await refusal(stubs.prepay("RC-0016")))[1] == "ORDER_CLOSED"
    await stubs.paid("RC-0017")
    assert (await refusal(stubs.prepay("RC-0017")))[1] == "ORDER_PAID"


async def test_unknown_order_is_not_found(stubs: Stubs) -> None:
    for call in (stubs.query("RC-9999"), stubs.close("RC-9999"), stubs.pay("RC-9999")):
        code, _, details = await refusal(call)
        assert code is grpc.StatusCode.NOT_FOUND
        assert "ORDER_NOT_EXIST" in details


async def test_concurrent_identical_prepays_make_one_order(stubs: Stubs) -> None:
    prepay_ids = await asyncio.gather(*(stubs.prepay("RC-0020", 100) for _ in range(6)))
    assert len(set(prepay_ids)) == 1


async def test_concurrent_payments_take_the_money_once_and_notify_once(
    wechat: Running, stubs: Stubs, merchant: FakeMerchant
) -> None:
    await stubs.prepay("RC-0021")
    paid = await asyncio.gather(*(stubs.pay("RC-0021") for _ in range(6)))
    assert len({p.transaction_id for p in paid}) == 1
    await merchant.wait_count(1)

    async def delivered() -> list[Notification]:
        async with wechat.simulator.ctx.uow(readonly=True) as uow:
            found = await uow.notifications.list("RC-0021")
        return found if found and all(n.status is DeliveryStatus.DELIVERED for n in found) else []

    # Every notification of the order is on record as delivered: nothing is left to send.
    found = await eventually(delivered, what="RC-0021's notifications recorded as delivered")
    assert [(n.event_type, n.attempts) for n in found] == [("TRANSACTION.SUCCESS", 1)]
    assert len(merchant.received) == 1
