"""One stack for every sentinel scenario: the three real services with a 1 s hold, a 0.5 s sentinel
interval, a short WeChat schedule and two merchants (direct and partner mode) whose unpaid orders
expire after 4 s; helpers to fault, wait, run the operator CLI, and check each order's money
against the card journal and WeChat (I1-I4). Scenarios act for the partner-mode merchant unless
they parametrize ``merchant``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from rc_common.auth import OPERATOR
from rc_common.channels import TOKEN_ENV
from scripts.merchants import DemoMerchant, direct_merchants_flag
from scripts.stack import ROOT, ServiceProcess, Stack, build_stack, start_stack
from tests.e2e.merchants import PARTNER, configured, open_all
from tests.e2e.recharge_flow.conftest import Clients, connected
from tests.waiting import wait_until

EXPIRY_S = 4
MAX_ATTEMPTS = 5
S = recharge_pb2
CARD = "/card.v1.CardSystem/"
GATEWAY = "/wechatpay.v1.PaymentGateway/"


@pytest.fixture(scope="package")
def sentinel_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("sentinel")
    merchants = configured(order_expiry_seconds=EXPIRY_S)
    stack = build_stack(
        workdir,
        recharge_args=[
            *("--hold", "1", "--sentinel-interval", "0.5"),
            *("--max-attempts", str(MAX_ATTEMPTS), "--lease", "10", "--node-id", "e2e-node"),
            *("--confirm-attempts", "3", "--confirm-backoff", "0.05", "--confirm-deadline", "0.5"),
            *("--remote-backoff", "0.05", "--remote-deadline", "1"),
            *("--outbox-interval", "0.2", "--outbox-backoff", "0.1", "--outbox-backoff-max", "0.5"),
        ],
        wechat_args=[
            *("--notify-schedule", "0.2,0.3,0.5,1", "--refund-delay", "0.3", "--idle-poll", "0.2"),
            *direct_merchants_flag(merchants),
        ],
    )
    running = start_stack(stack)
    try:
        open_all(running, merchants)
        yield running
    finally:
        running.stop()


@pytest.fixture
def merchant() -> DemoMerchant:
    """The merchant a scenario acts for (partner mode unless the test parametrizes ``merchant``)."""
    return PARTNER


@dataclass
class Ops(Clients):
    """The flow's clients plus fault plans of several rules, waiting, the CLI and money checks."""

    async def card_faults_set(self, *rules: faults_pb2.FaultRule) -> None:
        await self.card_faults.SetFaults(faults_pb2.FaultPlan(seed=1, rules=list(rules)), timeout=5)

    async def wechat_faults_set(self, *rules: faults_pb2.FaultRule) -> None:
        await self.wechat_faults.SetFaults(faults_pb2.FaultPlan(seed=1, rules=list(rules)), timeout=5)

    async def until(self, order_no: str, *statuses: int, within: float = 30.0) -> recharge_pb2.RechargeOrder:
        wanted = " or ".join(recharge_pb2.OrderStatus.Name(s) for s in statuses)  # type: ignore[arg-type]
        return await self.wait_for(order_no, lambda o: o.status in statuses, within, what=wanted)

    async def remote_calls(self, order_no: str, method: str) -> list[recharge_pb2.TimelineEvent]:
        """Attempts that got an answer or gave up (not the rows written before sending)."""
        events = await self.timeline(order_no)
        return [
            e for e in events if e.kind == "remote_call" and e.method.endswith(method) and e.outcome != "sent"
        ]

    async def transitions_to(self, order_no: str, status: int) -> list[recharge_pb2.TimelineEvent]:
        return [e for e in await self.timeline(order_no) if e.kind == "transition" and e.to_status == status]

    async def visits(self, order_no: str) -> list[recharge_pb2.TimelineEvent]:
        return [e for e in await self.timeline(order_no) if e.kind == "sentinel_visit"]

    async def refund_of(self, order_no: str) -> wechatpay_pb2.Refund | None:
        try:
            return await self.refund(f"{order_no}-R1")
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
            return None

    async def money_holds(self, card_no: str, order: recharge_pb2.RechargeOrder) -> None:
        """I1-I4 for one order alone on its card: credited once and not refunded, or refunded only
        after a void and not credited, or neither; the balance is exactly what was credited."""
        order = await self.order(order.order_no)
        assert order.merchant_id == self.merchant_id
        record = await self.recharge(order.order_no)
        assert record.merchant_id == self.merchant_id  # a tombstone too: the void names the merchant
        credits = await self.principal_credits(card_no, order.order_no)
        refund = await self.refund_of(order.order_no)
        balance = await self.balance(card_no)
        assert balance >= 0
        if order.status == S.ORDER_STATUS_CREDITED:
            assert record.status == card_pb2.PRE_RECHARGE_STATUS_SUCCEEDED
            assert (credits, refund, balance) == (1, None, order.pay_amount_fen + order.bonus_fen)
            return
        assert credits == 0 and balance == 0
        if refund is not None:  # I1: the void came first and said VOIDED
            assert record.status == card_pb2.PRE_RECHARGE_STATUS_VOIDED
            events = await self.timeline(order.order_no)
            voids = [
                i for i, e in enumerate(events) if e.method.endswith("VoidRecharge") and e.outcome == "done"
            ]
            refunds = [i for i, e in enumerate(events) if e.method.endswith("CreateRefund")]
            assert voids and refunds and voids[0] < refunds[0]
            assert refund.refund_fen == order.pay_amount_fen
        if order.status == S.ORDER_STATUS_REFUNDED:
            assert refund is not None and refund.status == wechatpay_pb2.REFUND_STATUS_SUCCESS
        if order.status == S.ORDER_STATUS_CLOSED:
            assert refund is None and record.status == card_pb2.PRE_RECHARGE_STATUS_VOIDED

    async def cli(self, *args: str, subject: str = "alice") -> subprocess.CompletedProcess[str]:
        """``python -m recharge_service.ops --target <recharge center> ARGS`` as a subprocess, with
        the token of operator ``subject`` in ``$RC_OPS_TOKEN``."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "recharge_service.ops",
            "--target",
            self.stack.recharge.address,
            *args,
            env={**os.environ, TOKEN_ENV: self.stack.token_for(subject, (OPERATOR,))},
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode is not None
        return subprocess.CompletedProcess(list(args), process.returncode, out.decode(), err.decode())


def rule(method: str, kind: int, times: int = 0, delay_ms: int = 0) -> faults_pb2.FaultRule:
    return faults_pb2.FaultRule(method=method, kind=kind, times=times, delay_ms=delay_ms)  # type: ignore[arg-type]


def restart(service: ServiceProcess) -> None:
    """kill -9, then start again on the same port with the same arguments and database."""
    host, port = service.host, service.port
    service.kill()
    errors: list[RuntimeError] = []

    def started() -> bool:
        try:
            service.start(f"{host}:{port}")
        except RuntimeError as error:  # the port may be held for a moment after the kill
            errors.append(error)
            return False
        return True

    try:
        wait_until(started, within=30, interval=0.05, what=f"{service.name} starting again on port {port}")
    except AssertionError as failure:
        raise failure from errors[-1] if errors else None


@pytest.fixture
async def ops(sentinel_stack: Stack, merchant: DemoMerchant) -> AsyncIterator[Ops]:
    async with connected(Ops, sentinel_stack, merchant, {}) as built:
        yield built
