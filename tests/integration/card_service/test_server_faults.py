"""Each fault kind, observed from a real client on a real ``python -m card_service``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from rc_common.channels import aio_channel
from rc_common.faults import FaultKind
from rc_common.grpc_status import error_reason
from scripts.stack import ServiceProcess
from tests import auth
from tests.integration.card_service.conftest import (
    MERCHANT,
    Stubs,
    log_events,
    start_card_service,
    wait_for_log,
)
from tests.waiting import eventually

SYSTEM = "/card.v1.CardSystem/"
RECHARGING = card_pb2.PRE_RECHARGE_STATUS_RECHARGING
SUCCEEDED = card_pb2.PRE_RECHARGE_STATUS_SUCCEEDED
VOIDED = card_pb2.PRE_RECHARGE_STATUS_VOIDED


def rule(method: str, kind: FaultKind, *, delay_ms: int = 0, times: int = 1) -> faults_pb2.FaultRule:
    return faults_pb2.FaultRule(method=method, kind=kind.value, delay_ms=delay_ms, times=times)


async def pre_recharge(stubs: Stubs, order_no: str, card_no: str, pay: int = 10_000) -> card_pb2.PreRecharge:
    request = card_pb2.PreRechargeRequest(
        order_no=order_no, card_no=card_no, pay_amount_fen=pay, merchant_id=MERCHANT
    )
    return await stubs.system.PreRecharge(request, timeout=10)


async def confirm(stubs: Stubs, order_no: str, deadline_s: float = 10) -> card_pb2.PreRecharge:
    return await stubs.system.ConfirmRecharge(
        card_pb2.ConfirmRechargeRequest(order_no=order_no), timeout=deadline_s
    )


async def void(stubs: Stubs, order_no: str) -> card_pb2.PreRecharge:
    request = card_pb2.VoidRechargeRequest(order_no=order_no, reason="credit unknown")
    return await stubs.system.VoidRecharge(request, timeout=10)


async def status_of(stubs: Stubs, order_no: str) -> int:
    return int(
        (await stubs.system.GetRecharge(card_pb2.GetRechargeRequest(order_no=order_no), timeout=10)).status
    )


async def test_unavailable_refuses_before_doing_anything(stubs: Stubs) -> None:
    card_no = await stubs.open_card("6210000000000001")
    await stubs.set_faults(rule(SYSTEM + "PreRecharge", FaultKind.UNAVAILABLE))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await pre_recharge(stubs, "F1-1", card_no)
    assert error.value.code() is grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stubs.system.GetRecharge(card_pb2.GetRechargeRequest(order_no="F1-1"), timeout=10)
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert (await pre_recharge(stubs, "F1-1", card_no)).status == RECHARGING  # times=1 is spent
    assert await stubs.fault_counts() == {(SYSTEM + "PreRecharge", FaultKind.UNAVAILABLE): 1}


async def test_delay_holds_the_card_lock_so_a_second_caller_on_the_card_waits(
    stubs: Stubs, card_server: ServiceProcess
) -> None:
    card_no = await stubs.open_card("6210000000000002")
    await pre_recharge(stubs, "F2-1", card_no, pay=10_000)
    await stubs.set_faults(rule(SYSTEM + "ConfirmRecharge", FaultKind.DELAY, delay_ms=1_500))
    holds = len(log_events(card_server, "fault_lock_hold"))
    slow_confirm = asyncio.create_task(confirm(stubs, "F2-1", deadline_s=30))
    await wait_for_log(card_server, "fault_lock_hold", holds + 1)  # the confirm now holds the card's lock
    spend = card_pb2.ConsumeRequest(
        request_id="F2-C1", card_no=card_no, amount_fen=6_000, merchant_id=MERCHANT
    )
    consumption = await stubs.system.Consume(spend, timeout=30)
    # Spending 6_000 from an empty card only works after the delayed credit: the spend waited.
    assert consumption.balance_after_fen == 4_000
    assert (await slow_confirm).status == SUCCEEDED
    assert await stubs.fault_counts() == {(SYSTEM + "ConfirmRecharge", FaultKind.DELAY): 1}


async def test_a_late_success_after_a_void_is_refused_and_nothing_is_credited(
    stubs: Stubs, card_server: ServiceProcess
) -> None:
    card_no = await stubs.open_card("6210000000000003")
    await pre_recharge(stubs, "F3-1", card_no)
    await stubs.set_faults(rule(SYSTEM + "ConfirmRecharge", FaultKind.LATE_SUCCESS, delay_ms=2_000))
    processed = len(log_events(card_server, "fault_late_success_processed"))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await confirm(stubs, "F3-1", deadline_s=0.3)
    assert error.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert (await void(stubs, "F3-1")).status == VOIDED  # the caller fences the unknown credit
    await wait_for_log(card_server, "fault_late_success_processed", processed + 1)
    assert await status_of(stubs, "F3-1") == VOIDED
    assert await stubs.balance(card_no) == 0
    assert not [e for e in log_events(card_server, "recharge_confirmed") if e.get("order_no") == "F3-1"]
    assert await stubs.fault_counts() == {(SYSTEM + "ConfirmRecharge", FaultKind.LATE_SUCCESS): 1}


async def test_a_late_success_before_the_void_wins_and_the_void_reports_it(
    stubs: Stubs, card_server: ServiceProcess
) -> None:
    card_no = await stubs.open_card("6210000000000004")
    await pre_recharge(stubs, "F4-1", card_no)
    await stubs.set_faults(rule(SYSTEM + "ConfirmRecharge", FaultKind.LATE_SUCCESS, delay_ms=100))
    processed = len(log_events(card_server, "fault_late_success_processed"))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await confirm(stubs, "F4-1", deadline_s=1.0)
    assert error.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    await wait_for_log(card_server, "fault_late_success_processed", processed + 1)
    assert (await void(stubs, "F4-1")).status == SUCCEEDED  # the credit won: no refund allowed
    assert await stubs.balance(card_no) == 10_000


async def test_a_tombstone_refuses_a_pre_recharge_that_lands_late(
    stubs: Stubs, card_server: ServiceProcess
) -> None:
    card_no = await stubs.open_card("6210000000000006")
    await pre_recharge(stubs, "F8-0", card_no)
    lost = len(log_events(card_server, "fault_detached_answer_lost"))
    await stubs.set_faults(rule(SYSTEM + "PreRecharge", FaultKind.LATE_SUCCESS, delay_ms=2_000))
    request = card_pb2.PreRechargeRequest(
        order_no="F8-1", card_no=card_no, pay_amount_fen=10_000, merchant_id=MERCHANT
    )
    with pytest.raises(grpc.aio.AioRpcError) as timed_out:
        await stubs.system.PreRecharge(request, timeout=0.3)
    assert timed_out.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    tombstone = await void(stubs, "F8-1")
    assert (tombstone.status, tombstone.tombstone, tombstone.card_no) == (VOIDED, True, "")
    await wait_for_log(card_server, "fault_detached_answer_lost", lost + 1, code="FAILED_PRECONDITION")
    assert await status_of(stubs, "F8-1") == VOIDED
    card = await stubs.system.GetCard(card_pb2.GetCardRequest(card_no=card_no), timeout=10)
    assert card.pending_recharge_fen == 10_000  # F8-0 only: the late F8-1 was refused


async def test_a_lost_response_was_committed_and_a_retry_credits_nothing_more(stubs: Stubs) -> None:
    card_no = await stubs.open_card("6210000000000005")
    await pre_recharge(stubs, "F5-1", card_no)
    await stubs.set_faults(rule(SYSTEM + "ConfirmRecharge", FaultKind.LOST_RESPONSE))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await confirm(stubs, "F5-1")
    assert error.value.code() is grpc.StatusCode.UNAVAILABLE
    assert await status_of(stubs, "F5-1") == SUCCEEDED
    assert (await confirm(stubs, "F5-1")).status == SUCCEEDED
    assert await stubs.balance(card_no) == 10_000
    assert await stubs.fault_counts() == {(SYSTEM + "ConfirmRecharge", FaultKind.LOST_RESPONSE): 1}


async def test_a_lost_refusal_is_still_a_refusal_on_retry(stubs: Stubs) -> None:
    await stubs.set_faults(rule(SYSTEM + "PreRecharge", FaultKind.LOST_RESPONSE))
    with pytest.raises(grpc.aio.AioRpcError) as lost:
        await pre_recharge(stubs, "F6-1", "6210000000000404")
    assert lost.value.code() is grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await pre_recharge(stubs, "F6-1", "6210000000000404")
    assert (refused.value.code(), error_reason(refused.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CARD_NOT_FOUND",
    )


async def test_an_outage_answers_unavailable_until_it_ends_or_is_cleared(stubs: Stubs) -> None:
    card_no = await stubs.open_card("6210000000000007")
    await stubs.set_faults(rule("*", FaultKind.OUTAGE, delay_ms=60_000, times=0))
    for call in (stubs.balance(card_no), pre_recharge(stubs, "F7-1", card_no)):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        assert error.value.code() is grpc.StatusCode.UNAVAILABLE
    counts = await stubs.fault_counts()
    assert counts[(SYSTEM + "GetCard", FaultKind.OUTAGE)] == 1
    assert counts[(SYSTEM + "PreRecharge", FaultKind.OUTAGE)] == 1
    await stubs.faults.ClearFaults(faults_pb2.ClearFaultsRequest(), timeout=5)
    assert await stubs.balance(card_no) == 0

    await stubs.set_faults(rule(SYSTEM + "*", FaultKind.OUTAGE, delay_ms=300, times=0))
    outcomes: list[object] = []

    async def answered() -> bool:
        try:
            outcomes.append(await stubs.balance(card_no))
        except grpc.aio.AioRpcError as error:
            outcomes.append(error.code())
            return False
        return True

    await eventually(answered, interval=0.02, what="the 300 ms outage ending by itself")
    assert outcomes[0] is grpc.StatusCode.UNAVAILABLE and outcomes[-1] == 0


async def test_a_fault_profile_file_is_loaded_at_start(tmp_path: Path) -> None:
    profile = tmp_path / "faults.json"
    profile.write_text(
        json.dumps(
            {
                "seed": 9,
                "rules": [
                    {"method": SYSTEM + "GetCard", "kind": "FAULT_KIND_UNAVAILABLE", "times": 1},
                ],
            }
        )
    )
    service = start_card_service(tmp_path, "--faults", str(profile))
    try:
        async with aio_channel(service.address, auth.client()) as channel:
            stubs = Stubs(channel)
            card_no = await stubs.open_card("6210000000000008")
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stubs.balance(card_no)
            assert error.value.code() is grpc.StatusCode.UNAVAILABLE
            assert await stubs.balance(card_no) == 0
            stats = await stubs.faults.GetFaultStats(faults_pb2.GetFaultStatsRequest(), timeout=5)
            assert (stats.seed, [r.method for r in stats.rules], stats.total) == (9, [SYSTEM + "GetCard"], 1)
    finally:
        service.stop()
