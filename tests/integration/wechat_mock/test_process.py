"""The simulator as a real process (``python -m wechat_mock``): grpcurl drives it through server
reflection, and a kill -9 loses nothing — orders, refunds and pending notifications survive, and
the deliveries resume after the restart."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from protos.wechatpay.v1 import wechatpay_pb2 as pb
from scripts.stack import ServiceProcess
from tests.integration.wechat_mock.fakes import SP_MCHID, SUB_MCHID, FakeMerchant, Stubs, always
from tests.waiting import eventually
from wechat_mock.adapters.keys import load_keys

GRPCURL = str(Path(sys.executable).parent / "grpcurl")
#: The MerchantRef of every gateway call, as JSON (partner mode).
MERCHANT = {"sp_mchid": SP_MCHID, "sub_mchid": SUB_MCHID}


def simulator_process(tmp_path: Path, keys_dir: Path, merchant: FakeMerchant, *extra: str) -> ServiceProcess:
    assert merchant.server is not None
    return ServiceProcess(
        "wechat",
        "wechat_mock",
        [
            "--db", f"sqlite+aiosqlite:///{tmp_path / 'wechat.db'}",
            "--keys-dir", str(keys_dir),
            "--notify-target", merchant.server.address,
            "--notify-timeout", "1",
            *extra,
        ],
        tmp_path / "wechat.log",
    )


async def start(process: ServiceProcess) -> ServiceProcess:
    # ServiceProcess.start blocks while it waits for the port: keep the fake merchant answering.
    await asyncio.to_thread(process.migrate)
    await asyncio.to_thread(process.start, "127.0.0.1:0")
    return process


@pytest.fixture
async def process_cleanup() -> AsyncIterator[list[ServiceProcess]]:
    processes: list[ServiceProcess] = []
    try:
        yield processes
    finally:
        for process in processes:
            await asyncio.to_thread(process.stop)


async def grpcurl(address: str, method: str, payload: dict[str, object]) -> dict[str, object]:
    done = await asyncio.to_thread(
        subprocess.run,
        [GRPCURL, "-plaintext", "-d", json.dumps(payload), address, method],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


async def test_grpcurl_creates_pays_queries_and_refunds_an_order(
    tmp_path: Path, keys_dir: Path, merchant: FakeMerchant, process_cleanup: list[ServiceProcess]
) -> None:
    process = await start(simulator_process(tmp_path, keys_dir, merchant, "--refund-delay", "0.3"))
    process_cleanup.append(process)
    address = process.address
    gateway = "wechatpay.v1.PaymentGateway"
    prepay = await grpcurl(address, f"{gateway}/CreatePrepay", {
        "out_trade_no": "GU-0001", "description": "top up", "amount_total_fen": 1000,
        "payer_openid": "o-grpcurl", "merchant": MERCHANT,
    })
    assert str(prepay["prepay_id"]).startswith("wx")
    paid = await grpcurl(address, "wechatpay.v1.PayerSimulator/Pay", {"out_trade_no": "GU-0001"})
    assert paid["trade_state"] == "TRADE_STATE_SUCCESS"
    query = {"out_trade_no": "GU-0001", "merchant": MERCHANT}
    queried = await grpcurl(address, f"{gateway}/QueryOrder", query)
    assert queried["transaction_id"] == paid["transaction_id"]
    assert (queried["sp_mchid"], queried["sub_mchid"], queried.get("mchid")) == (SP_MCHID, SUB_MCHID, None)
    refund = await grpcurl(address, f"{gateway}/CreateRefund", {
        "out_trade_no": "GU-0001", "out_refund_no": "GU-0001-r", "refund_fen": 1000, "total_fen": 1000,
        "merchant": MERCHANT,
    })
    assert refund["status"] == "REFUND_STATUS_PROCESSING"

    async def refunded() -> bool:
        answer = await grpcurl(
            address, f"{gateway}/QueryRefund", {"out_refund_no": "GU-0001-r", "merchant": MERCHANT}
        )
        return answer["status"] == "REFUND_STATUS_SUCCESS"

    await eventually(refunded)
    wanted = {"TRANSACTION.SUCCESS", "REFUND.SUCCESS"}
    await merchant.wait_for(lambda items: {i.event_type for i in items} >= wanted)


async def test_kill_and_restart_keeps_state_and_resumes_pending_notifications(
    tmp_path: Path, keys_dir: Path, merchant: FakeMerchant, process_cleanup: list[ServiceProcess]
) -> None:
    merchant.policy = always("FAIL")
    args = ("--notify-schedule", ",".join(["0.3"] * 40), "--refund-delay", "2.5")
    first = await start(simulator_process(tmp_path, keys_dir, merchant, *args))
    process_cleanup.append(first)
    async with grpc.aio.insecure_channel(first.address) as channel:
        stubs = Stubs(channel)
        paid = await stubs.paid("RS-0001", 300)
        await stubs.paid("RS-0002", 500)
        accepted = await stubs.refund("RS-0002", "RS-0002-r", 500, 500)
        await merchant.wait_for(lambda items: len(items) >= 2)  # failing deliveries are under way
        before_kill = await stubs.query_refund("RS-0002-r")
    await asyncio.to_thread(first.kill)
    assert before_kill.status == pb.REFUND_STATUS_PROCESSING

    merchant.policy = always("SUCCESS")
    second = await start(simulator_process(tmp_path, keys_dir, merchant, *args))
    process_cleanup.append(second)
    async with grpc.aio.insecure_channel(second.address) as channel:
        stubs = Stubs(channel)
        order = await stubs.query("RS-0001")
        assert (order.trade_state, order.transaction_id) == (pb.TRADE_STATE_SUCCESS, paid.transaction_id)
        assert (await stubs.pay("RS-0001")).transaction_id == paid.transaction_id
        refund = await stubs.query_refund("RS-0002-r")
        assert refund.refund_id == accepted.refund_id

        async def settled() -> bool:
            return (await stubs.query_refund("RS-0002-r")).status == pb.REFUND_STATUS_SUCCESS

        await eventually(settled)

    def acknowledged(event_type: str, out_trade_no: str) -> bool:
        keys = load_keys(keys_dir)
        return any(
            item.answer == "SUCCESS" and item.plain(keys.apiv3_key)["out_trade_no"] == out_trade_no
            for item in merchant.of(event_type)
        )

    await merchant.wait_for(
        lambda _items: acknowledged("TRANSACTION.SUCCESS", "RS-0001")
        and acknowledged("TRANSACTION.SUCCESS", "RS-0002")
        and acknowledged("REFUND.SUCCESS", "RS-0002")
    )
    ids = {item.envelope["id"] for item in merchant.of("TRANSACTION.SUCCESS")}
    assert len(ids) == 2  # the same two notifications before and after the crash, no new ones
