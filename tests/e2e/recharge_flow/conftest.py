"""The three real services with short settings and two merchants side by side (direct and partner
mode, different bonus rules, POS callbacks to one receiver), and clients acting for one merchant."""

from __future__ import annotations

import dataclasses
import functools
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import grpc
import pytest

from protos.card.v1 import card_pb2, card_pb2_grpc
from protos.faults.v1 import faults_pb2, faults_pb2_grpc
from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.channels import aio_channel
from scripts.merchants import DemoMerchant, direct_merchants_flag
from scripts.stack import Stack, build_stack, start_stack
from tests.e2e.merchants import DIRECT, configured, open_all
from tests.waiting import eventually

CONFIRM_DEADLINE_S = 0.5
#: How often the tests ask the services (real processes on two cores) for an order's state.
POLL = 0.05


@dataclass
class CallbackReceiver(recharge_pb2_grpc.RechargeCallbacksServicer):  # type: ignore[misc]
    """A POS gateway: acts once per event id; the first call for an id in ``fail_once`` is answered
    UNAVAILABLE (the gateway was restarting)."""

    calls: list[str] = field(default_factory=list)
    seen: dict[str, recharge_pb2.RechargeOrder] = field(default_factory=dict)
    fail_once: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def OnRechargeFinished(
        self, request: Any, context: grpc.ServicerContext
    ) -> recharge_pb2.RechargeFinishedAck:
        with self.lock:
            self.calls.append(request.event_id)
            if request.event_id in self.fail_once:
                self.fail_once.discard(request.event_id)
                context.abort(grpc.StatusCode.UNAVAILABLE, "POS gateway restarting")
            self.seen.setdefault(request.event_id, request.order)
        return recharge_pb2.RechargeFinishedAck()


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[CallbackReceiver, str]]:
    servicer = CallbackReceiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    recharge_pb2_grpc.add_RechargeCallbacksServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        server.stop(0)


@pytest.fixture(scope="module")
def flow_stack(
    tmp_path_factory: pytest.TempPathFactory, receiver: tuple[CallbackReceiver, str]
) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("recharge-flow")
    merchants = configured(pos_callback=receiver[1])
    stack = build_stack(
        workdir,
        recharge_args=[
            "--confirm-attempts",
            "3",
            "--confirm-backoff",
            "0.05",
            "--confirm-deadline",
            str(CONFIRM_DEADLINE_S),
            "--remote-backoff",
            "0.05",
            "--remote-deadline",
            "2",
            "--outbox-interval",
            "0.1",
            "--outbox-backoff",
            "0.1",
            "--outbox-backoff-max",
            "0.5",
        ],
        wechat_args=[
            *("--notify-schedule", "0.2,0.3,0.5,1,1,2", "--refund-delay", "0.3", "--idle-poll", "0.2"),
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
    """The merchant a test acts for (direct mode unless the test parametrizes ``merchant``)."""
    return DIRECT


@dataclass
class Clients:
    """Stubs of the three services, acting for ``merchant``: every call that takes a merchant
    names it (``as_merchant`` acts for another with the same stubs)."""

    stack: Stack
    merchant: DemoMerchant
    center: recharge_pb2_grpc.RechargeCenterStub
    ops: recharge_pb2_grpc.RechargeOpsStub
    notify: wechatpay_pb2_grpc.PaymentNotificationsStub
    cards: card_pb2_grpc.CardSystemStub
    admin: card_pb2_grpc.CardAdminStub
    card_faults: faults_pb2_grpc.FaultControlStub
    gateway: wechatpay_pb2_grpc.PaymentGatewayStub
    payer: wechatpay_pb2_grpc.PayerSimulatorStub
    messages: wechatpay_pb2_grpc.MessageSimulatorStub
    wechat_faults: faults_pb2_grpc.FaultControlStub
    #: Every order created through these clients (shared by ``as_merchant``), with its merchant.
    created: dict[str, DemoMerchant] = field(default_factory=dict)

    def as_merchant(self, merchant: DemoMerchant) -> Self:
        return dataclasses.replace(self, merchant=merchant)

    @property
    def merchant_id(self) -> str:
        return self.merchant.merchant_id

    async def new_card(self) -> str:
        card_no = "66" + f"{uuid.uuid4().int % 10**14:014d}"
        await self.admin.OpenCard(
            card_pb2.OpenCardRequest(card_no=card_no, holder_name="E2E", merchant_id=self.merchant_id),
            timeout=10,
        )
        return card_no

    async def create(
        self, card_no: str, pay_amount_fen: int = 100_000, openid: str = "", key: str = ""
    ) -> recharge_pb2.RechargeOrder:
        order: recharge_pb2.RechargeOrder = await self.center.CreateRechargeOrder(
            recharge_pb2.CreateRechargeOrderRequest(
                card_no=card_no,
                pay_amount_fen=pay_amount_fen,
                channel=recharge_pb2.CHANNEL_POS,
                idempotency_key=key or uuid.uuid4().hex,
                payer_openid=openid or f"o-{card_no}",
                merchant_id=self.merchant_id,
            ),
            timeout=15,
        )
        self.created[order.order_no] = self.merchant
        return order

    async def followups_settled(self, within: float = 30.0) -> None:
        """Wait until every order created in this module so far has had its follow-ups delivered
        (so a fault set next hits only the next test's own traffic)."""
        wanted = {
            recharge_pb2.ORDER_STATUS_CREDITED: 2,
            recharge_pb2.ORDER_STATUS_REFUNDED: 2,
            recharge_pb2.ORDER_STATUS_REJECTED: 1,
            recharge_pb2.ORDER_STATUS_CLOSED: 1,
        }

        async def settled(order_no: str, merchant: DemoMerchant) -> bool:
            own = self.as_merchant(merchant)
            need = wanted.get((await own.order(order_no)).status, 0)
            ended = [
                e
                for e in await own.timeline(order_no)
                if e.kind == "outbox_delivery" and e.outcome in ("done", "skipped")
            ]
            return len(ended) >= need

        for order_no, merchant in list(self.created.items()):
            await eventually(
                functools.partial(settled, order_no, merchant),
                within=within,
                interval=POLL,
                what=f"the follow-ups of order {order_no} delivered",
            )

    async def order(self, order_no: str) -> recharge_pb2.RechargeOrder:
        return await self.center.GetRechargeOrder(
            recharge_pb2.GetRechargeOrderRequest(order_no=order_no, merchant_id=self.merchant_id), timeout=5
        )

    async def wait_for(
        self,
        order_no: str,
        done: Callable[[recharge_pb2.RechargeOrder], bool],
        within: float = 30.0,
        what: str = "the wanted state",
        interval: float = POLL,
    ) -> recharge_pb2.RechargeOrder:
        async def reached() -> recharge_pb2.RechargeOrder | None:
            order = await self.order(order_no)
            return order if done(order) else None

        return await eventually(
            reached, within=within, interval=interval, what=f"order {order_no} reaching {what}"
        )

    async def balance(self, card_no: str) -> int:
        request = card_pb2.GetCardRequest(card_no=card_no, merchant_id=self.merchant_id)
        return (await self.cards.GetCard(request, timeout=5)).balance_fen

    async def journal(self, card_no: str) -> list[card_pb2.JournalEntry]:
        journal = await self.cards.ListJournal(
            card_pb2.ListJournalRequest(card_no=card_no, page_size=500, merchant_id=self.merchant_id),
            timeout=5,
        )
        return list(journal.entries)

    async def principal_credits(self, card_no: str, order_no: str) -> int:
        return sum(
            1
            for e in await self.journal(card_no)
            if e.business_key == order_no and e.kind == card_pb2.JOURNAL_KIND_RECHARGE_PRINCIPAL
        )

    async def recharge(self, order_no: str) -> card_pb2.PreRecharge:
        """The card system's pre-recharge record of the order (this merchant's)."""
        request = card_pb2.GetRechargeRequest(order_no=order_no, merchant_id=self.merchant_id)
        return await self.cards.GetRecharge(request, timeout=5)

    async def pay(self, order_no: str) -> wechatpay_pb2.Transaction:
        """The customer pays the order's prepay in WeChat."""
        return await self.payer.Pay(wechatpay_pb2.PayRequest(out_trade_no=order_no), timeout=10)

    async def trade(self, order_no: str) -> wechatpay_pb2.Transaction:
        """The order as WeChat Pay shows it to this merchant."""
        request = wechatpay_pb2.QueryOrderRequest(out_trade_no=order_no, merchant=self.merchant.wechat_ref())
        return await self.gateway.QueryOrder(request, timeout=5)

    async def refund(self, out_refund_no: str) -> wechatpay_pb2.Refund:
        """A refund as WeChat Pay shows it to this merchant."""
        request = wechatpay_pb2.QueryRefundRequest(
            out_refund_no=out_refund_no, merchant=self.merchant.wechat_ref()
        )
        return await self.gateway.QueryRefund(request, timeout=5)

    async def timeline(self, order_no: str) -> list[recharge_pb2.TimelineEvent]:
        reply = await self.ops.GetOrderTimeline(
            recharge_pb2.GetOrderTimelineRequest(order_no=order_no, merchant_id=self.merchant_id), timeout=5
        )
        return list(reply.events)

    async def statuses_visited(self, order_no: str) -> set[int]:
        return {e.to_status for e in await self.timeline(order_no) if e.kind == "transition"}

    async def card_fault(self, method: str, kind: int, times: int, delay_ms: int = 0) -> None:
        rule = faults_pb2.FaultRule(method=method, kind=kind, times=times, delay_ms=delay_ms)  # type: ignore[arg-type]
        await self.card_faults.SetFaults(faults_pb2.FaultPlan(seed=1, rules=[rule]), timeout=5)

    async def wechat_fault(self, method: str, kind: int, times: int) -> None:
        rule = faults_pb2.FaultRule(method=method, kind=kind, times=times)  # type: ignore[arg-type]
        await self.wechat_faults.SetFaults(faults_pb2.FaultPlan(seed=1, rules=[rule]), timeout=5)

    async def clear_faults(self) -> None:
        await self.card_faults.ClearFaults(faults_pb2.ClearFaultsRequest(), timeout=5)
        await self.wechat_faults.ClearFaults(faults_pb2.ClearFaultsRequest(), timeout=5)


ClientsT = TypeVar("ClientsT", bound=Clients)


@pytest.fixture(scope="module")
def created_orders() -> dict[str, DemoMerchant]:
    return {}


@asynccontextmanager
async def connected(
    kind: type[ClientsT], stack: Stack, merchant: DemoMerchant, created: dict[str, DemoMerchant]
) -> AsyncIterator[ClientsT]:
    """``kind`` with stubs on channels to ``stack``'s services, acting for ``merchant``; the
    faults are cleared when it closes."""
    auth = stack.client_auth()  # the stack's operator token: RechargeOps, CardAdmin, FaultControl
    async with (
        aio_channel(stack.recharge.address, auth) as recharge,
        aio_channel(stack.card.address, auth) as card,
        aio_channel(stack.wechat.address, auth) as wechat,
    ):
        built = kind(
            stack=stack,
            merchant=merchant,
            center=recharge_pb2_grpc.RechargeCenterStub(recharge),
            ops=recharge_pb2_grpc.RechargeOpsStub(recharge),
            notify=wechatpay_pb2_grpc.PaymentNotificationsStub(recharge),
            cards=card_pb2_grpc.CardSystemStub(card),
            admin=card_pb2_grpc.CardAdminStub(card),
            card_faults=faults_pb2_grpc.FaultControlStub(card),
            gateway=wechatpay_pb2_grpc.PaymentGatewayStub(wechat),
            payer=wechatpay_pb2_grpc.PayerSimulatorStub(wechat),
            messages=wechatpay_pb2_grpc.MessageSimulatorStub(wechat),
            wechat_faults=faults_pb2_grpc.FaultControlStub(wechat),
            created=created,
        )
        try:
            yield built
        finally:
            await built.clear_faults()


@pytest.fixture
async def clients(
    flow_stack: Stack, merchant: DemoMerchant, created_orders: dict[str, DemoMerchant]
) -> AsyncIterator[Clients]:
    async with connected(Clients, flow_stack, merchant, created_orders) as built:
        yield built
