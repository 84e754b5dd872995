"""Fake gRPC servers on 127.0.0.1:0 that record what they receive and can be told to fail.

Each fake holds a per-method queue of *actions*; when it is empty the call succeeds:
``"unavailable"`` (answer UNAVAILABLE), ``"hang"`` (answer after the caller's deadline),
``("refuse", REASON)`` (FAILED_PRECONDITION + ErrorInfo reason).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from protos.card.v1 import card_pb2, card_pb2_grpc
from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.errors import Refused
from rc_common.grpc_status import abort_with
from rc_common.server import GrpcServer, create_server


class Scripted:
    def __init__(self) -> None:
        self.actions: dict[str, deque[Any]] = defaultdict(deque)
        self.received: list[tuple[str, Any]] = []

    def script(self, method: str, *actions: Any) -> None:
        self.actions[method].extend(actions)

    def of(self, method: str) -> list[Any]:
        return [request for name, request in self.received if name == method]

    async def _act(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        self.received.append((method, request))
        if not self.actions[method]:
            return
        action = self.actions[method].popleft()
        if action == "unavailable":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "fake: unavailable")
        if action == "hang":
            await asyncio.sleep((context.time_remaining() or 1.0) + 0.2)  # a slow server: past the deadline
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "fake: too late")
        if isinstance(action, tuple) and action[0] == "refuse":
            await abort_with(context, Refused(action[1], "fake refusal"))


class FakeCardSystem(card_pb2_grpc.CardSystemServicer, Scripted):  # type: ignore[misc]
    def __init__(self, bonus_fen: int = 2_000) -> None:
        Scripted.__init__(self)
        self.bonus_fen = bonus_fen
        self.records: dict[str, card_pb2.PreRecharge] = {}

    async def PreRecharge(self, request: Any, context: Any) -> card_pb2.PreRecharge:
        await self._act("PreRecharge", request, context)
        record = self.records.setdefault(
            request.order_no,
            card_pb2.PreRecharge(
                order_no=request.order_no,
                card_no=request.card_no,
                status=card_pb2.PRE_RECHARGE_STATUS_RECHARGING,
                pay_amount_fen=request.pay_amount_fen,
                bonus_fen=self.bonus_fen,
                credit_amount_fen=request.pay_amount_fen + self.bonus_fen,
                rule_version=3,
            ),
        )
        return record

    async def ConfirmRecharge(self, request: Any, context: Any) -> card_pb2.PreRecharge:
        await self._act("ConfirmRecharge", request, context)
        record = self.records[request.order_no]
        if record.status == card_pb2.PRE_RECHARGE_STATUS_RECHARGING:
            record.status = card_pb2.PRE_RECHARGE_STATUS_SUCCEEDED
        return record

    async def VoidRecharge(self, request: Any, context: Any) -> card_pb2.PreRecharge:
        await self._act("VoidRecharge", request, context)
        record = self.records.setdefault(request.order_no, card_pb2.PreRecharge(order_no=request.order_no))
        if record.status in (
            card_pb2.PRE_RECHARGE_STATUS_RECHARGING,
            card_pb2.PRE_RECHARGE_STATUS_UNSPECIFIED,
        ):
            record.status = card_pb2.PRE_RECHARGE_STATUS_VOIDED
        return record

    async def GetRecharge(self, request: Any, context: Any) -> card_pb2.PreRecharge:
        await self._act("GetRecharge", request, context)
        if request.order_no not in self.records:
            await context.abort(grpc.StatusCode.NOT_FOUND, "fake: no such pre-recharge")
        return self.records[request.order_no]


class FakeWechat(wechatpay_pb2_grpc.PaymentGatewayServicer, Scripted):  # type: ignore[misc]
    def __init__(self) -> None:
        Scripted.__init__(self)
        self._ids = itertools.count(1)

    async def CreatePrepay(self, request: Any, context: Any) -> wechatpay_pb2.CreatePrepayResponse:
        await self._act("CreatePrepay", request, context)
        return wechatpay_pb2.CreatePrepayResponse(prepay_id=f"wx_{request.out_trade_no}")

    async def CreateRefund(self, request: Any, context: Any) -> wechatpay_pb2.Refund:
        await self._act("CreateRefund", request, context)
        return wechatpay_pb2.Refund(
            out_refund_no=request.out_refund_no,
            refund_id=f"r{next(self._ids)}",
            status=wechatpay_pb2.REFUND_STATUS_PROCESSING,
        )


class FakeMessages(wechatpay_pb2_grpc.MessageSimulatorServicer, Scripted):  # type: ignore[misc]
    """Collapses repeats by idempotency key, as WeChat's simulator does."""

    def __init__(self) -> None:
        Scripted.__init__(self)
        self.messages: dict[str, wechatpay_pb2.SendTemplateMessageRequest] = {}

    async def SendTemplateMessage(
        self, request: Any, context: Any
    ) -> wechatpay_pb2.SendTemplateMessageResponse:
        await self._act("SendTemplateMessage", request, context)
        first = request.idempotency_key not in self.messages
        self.messages.setdefault(request.idempotency_key, request)
        return wechatpay_pb2.SendTemplateMessageResponse(
            msgid=f"m-{request.idempotency_key}", first_delivery=first
        )


class FakeCallbacks(recharge_pb2_grpc.RechargeCallbacksServicer, Scripted):  # type: ignore[misc]
    """A business system: dedupes on event_id; ``seen`` is what it acted on."""

    def __init__(self) -> None:
        Scripted.__init__(self)
        self.seen: dict[str, recharge_pb2.RechargeOrder] = {}

    async def OnRechargeFinished(self, request: Any, context: Any) -> recharge_pb2.RechargeFinishedAck:
        await self._act("OnRechargeFinished", request, context)
        self.seen.setdefault(request.event_id, request.order)
        return recharge_pb2.RechargeFinishedAck()


def _registrar(add: Any, servicer: Any, service: str) -> Any:
    def register(server: grpc.aio.Server) -> str:
        add(servicer, server)
        return service

    return register


@asynccontextmanager
async def serving(*servicers: Any) -> AsyncIterator[GrpcServer]:
    """One server on 127.0.0.1:0 with the given fakes."""
    table = {
        FakeCardSystem: (card_pb2_grpc.add_CardSystemServicer_to_server, "card.v1.CardSystem"),
        FakeWechat: (wechatpay_pb2_grpc.add_PaymentGatewayServicer_to_server, "wechatpay.v1.PaymentGateway"),
        FakeMessages: (
            wechatpay_pb2_grpc.add_MessageSimulatorServicer_to_server,
            "wechatpay.v1.MessageSimulator",
        ),
        FakeCallbacks: (
            recharge_pb2_grpc.add_RechargeCallbacksServicer_to_server,
            "recharge.v1.RechargeCallbacks",
        ),
    }
    server = create_server(
        "127.0.0.1:0", [_registrar(*table[type(s)][:1], s, table[type(s)][1]) for s in servicers]
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop(0)
