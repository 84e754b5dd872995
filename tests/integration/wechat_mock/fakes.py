"""Test doubles around the WeChat simulator: a fake merchant (PaymentNotifications servicer on
127.0.0.1:0) that records every notification and answers as the test wants, and stubs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from protos.faults.v1 import faults_pb2, faults_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common import wechatpay_crypto as crypto
from rc_common.server import GrpcServer, create_server


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answer: str
    #: When it arrived (``time.monotonic``).
    at: float = field(default_factory=time.monotonic)

    @property
    def envelope(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def event_type(self) -> str:
        return str(self.envelope["event_type"])

    def plain(self, apiv3_key: str) -> dict[str, Any]:
        return crypto.open_notification(apiv3_key, self.body)[1]


#: Decides the merchant's answer: "SUCCESS", "FAIL", "ERROR" (the RPC fails with INTERNAL),
#: "UNAVAILABLE" (the RPC fails with UNAVAILABLE, as from a replica shutting down) or "SLOW"
#: (answers SUCCESS only after ``slow_s``, past the simulator's --notify-timeout).
Policy = Callable[[Received, int], str]


def always(code: str) -> Policy:
    return lambda _received, _index: code


@dataclass
class FakeMerchant(wechatpay_pb2_grpc.PaymentNotificationsServicer):
    policy: Policy = field(default_factory=lambda: always("SUCCESS"))
    received: list[Received] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    server: GrpcServer | None = None
    slow_s: float = 1.5

    async def Notify(
        self, request: wechatpay_pb2.NotifyRequest, context: grpc.aio.ServicerContext
    ) -> wechatpay_pb2.NotifyAck:
        item = Received(dict(request.headers), bytes(request.body), "")
        item.answer = self.policy(item, len(self.received))
        async with self._changed:
            self.received.append(item)
            self._changed.notify_all()
        if item.answer == "ERROR":
            await context.abort(grpc.StatusCode.INTERNAL, "merchant crashed")
        if item.answer == "UNAVAILABLE":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "merchant shutting down")
        if item.answer == "SLOW":
            await asyncio.sleep(self.slow_s)  # a slow merchant: answers after the simulator gave up
            return wechatpay_pb2.NotifyAck(code="SUCCESS")
        return wechatpay_pb2.NotifyAck(code=item.answer, message="" if item.answer == "SUCCESS" else "no")

    async def wait_for(
        self, predicate: Callable[[list[Received]], bool], within: float = 10.0
    ) -> list[Received]:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: predicate(self.received))
            return list(self.received)

    async def wait_count(self, count: int, within: float = 10.0) -> list[Received]:
        return await self.wait_for(lambda items: len(items) >= count, within)

    def of(self, event_type: str) -> list[Received]:
        return [item for item in self.received if item.event_type == event_type]

    async def start(self, listen: str = "127.0.0.1:0") -> str:
        def register(server: grpc.aio.Server) -> str:
            wechatpay_pb2_grpc.add_PaymentNotificationsServicer_to_server(self, server)
            return "wechatpay.v1.PaymentNotifications"

        self.server = create_server(listen, [register])
        await self.server.start()
        return self.server.address

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)


#: The simulator's service provider (its --mchid default) and the sub-merchant the tests act for.
SP_MCHID = "1900000109"
SP_APPID = "wxd678efh567hg6787"
SUB_MCHID = "1900000201"
#: Partner mode (服务商): what every test's gateway request names unless it says otherwise.
PARTNER = wechatpay_pb2.MerchantRef(sp_mchid=SP_MCHID, sub_mchid=SUB_MCHID)


def partner(sub_mchid: str) -> wechatpay_pb2.MerchantRef:
    return wechatpay_pb2.MerchantRef(sp_mchid=SP_MCHID, sub_mchid=sub_mchid)


def direct(mchid: str) -> wechatpay_pb2.MerchantRef:
    return wechatpay_pb2.MerchantRef(mchid=mchid)


class Stubs:
    """The simulator's stubs; the gateway helpers act for ``merchant`` (``as_merchant`` for another)."""

    def __init__(self, channel: grpc.aio.Channel, merchant: wechatpay_pb2.MerchantRef = PARTNER) -> None:
        self.channel = channel
        self.merchant = merchant
        self.gateway = wechatpay_pb2_grpc.PaymentGatewayStub(channel)
        self.payer = wechatpay_pb2_grpc.PayerSimulatorStub(channel)
        self.messages = wechatpay_pb2_grpc.MessageSimulatorStub(channel)
        self.faults = faults_pb2_grpc.FaultControlStub(channel)

    def as_merchant(self, merchant: wechatpay_pb2.MerchantRef) -> Stubs:
        """The same stubs (same channel), acting for ``merchant``."""
        return Stubs(self.channel, merchant)

    async def prepay(self, out_trade_no: str, amount_fen: int = 100, **extra: Any) -> str:
        request = wechatpay_pb2.CreatePrepayRequest(
            out_trade_no=out_trade_no,
            description=extra.pop("description", "储值卡充值"),
            amount_total_fen=amount_fen,
            payer_openid=extra.pop("payer_openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
            merchant=extra.pop("merchant", self.merchant),
            **extra,
        )
        return (await self.gateway.CreatePrepay(request, timeout=10)).prepay_id

    async def pay(self, out_trade_no: str) -> wechatpay_pb2.Transaction:
        return await self.payer.Pay(wechatpay_pb2.PayRequest(out_trade_no=out_trade_no), timeout=10)

    async def paid(self, out_trade_no: str, amount_fen: int = 100) -> wechatpay_pb2.Transaction:
        await self.prepay(out_trade_no, amount_fen)
        return await self.pay(out_trade_no)

    async def query(self, out_trade_no: str) -> wechatpay_pb2.Transaction:
        request = wechatpay_pb2.QueryOrderRequest(out_trade_no=out_trade_no, merchant=self.merchant)
        return await self.gateway.QueryOrder(request, timeout=10)

    async def close(self, out_trade_no: str, deadline_s: float = 10) -> wechatpay_pb2.CloseOrderResponse:
        return await self.gateway.CloseOrder(
            wechatpay_pb2.CloseOrderRequest(out_trade_no=out_trade_no, merchant=self.merchant),
            timeout=deadline_s,
        )

    async def refund(
        self,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int = 100,
        deadline_s: float = 10,
    ) -> wechatpay_pb2.Refund:
        request = wechatpay_pb2.CreateRefundRequest(
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            refund_fen=refund_fen,
            total_fen=total_fen,
            merchant=self.merchant,
        )
        return await self.gateway.CreateRefund(request, timeout=deadline_s)

    async def query_refund(self, out_refund_no: str) -> wechatpay_pb2.Refund:
        return await self.gateway.QueryRefund(
            wechatpay_pb2.QueryRefundRequest(out_refund_no=out_refund_no, merchant=self.merchant), timeout=10
        )

    async def bill(
        self, bill_date: str, merchant: wechatpay_pb2.MerchantRef | None = None
    ) -> wechatpay_pb2.DownloadTradeBillResponse:
        """The trade bill of ``merchant`` (None: every trade, the service provider's view)."""
        request = wechatpay_pb2.DownloadTradeBillRequest(bill_date=bill_date, merchant=merchant)
        return await self.gateway.DownloadTradeBill(request, timeout=10)

    async def set_faults(self, *rules: faults_pb2.FaultRule, seed: int = 1) -> None:
        await self.faults.SetFaults(faults_pb2.FaultPlan(seed=seed, rules=list(rules)), timeout=10)


def rule(method: str, kind: str, **fields: Any) -> faults_pb2.FaultRule:
    kind_value = faults_pb2.FaultKind.Value(f"FAULT_KIND_{kind}")
    return faults_pb2.FaultRule(method=method, kind=kind_value, **fields)
