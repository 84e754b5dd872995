"""Where follow-ups go: WeChat template messages (customer notices) and the business systems'
``recharge.v1.RechargeCallbacks`` (one target per channel; channels are opened lazily)."""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.channels import ClientAuth, aio_channel
from rc_common.outcomes import Done, Rejected, Unknown, call
from recharge_service.adapters.messages import order_to_proto
from recharge_service.domain.order import RechargeOrder


class NoticeClient:
    """``wechatpay.v1.MessageSimulator.SendTemplateMessage``; the idempotency key is the event id."""

    def __init__(self, channel: grpc.aio.Channel, deadline: float) -> None:
        self._stub = wechatpay_pb2_grpc.MessageSimulatorStub(channel)
        self._deadline = deadline

    async def send(
        self, openid: str, template_id: str, data: Mapping[str, str], idempotency_key: str
    ) -> Done[str] | Rejected | Unknown:
        request = wechatpay_pb2.SendTemplateMessageRequest(
            openid=openid, template_id=template_id, data=dict(data), idempotency_key=idempotency_key
        )
        outcome = await call(
            self._stub.SendTemplateMessage(request, timeout=self._deadline),
            method="/wechatpay.v1.MessageSimulator/SendTemplateMessage",
        )
        return Done(outcome.value.msgid, outcome.latency_ms) if isinstance(outcome, Done) else outcome


class CallbackClient:
    """``RechargeCallbacks.OnRechargeFinished`` at a target (one channel per target, kept open)."""

    def __init__(self, deadline: float, auth: ClientAuth | None = None) -> None:
        self._deadline = deadline
        self._auth = auth
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, recharge_pb2_grpc.RechargeCallbacksStub] = {}

    async def send(self, target: str, event_id: str, order: RechargeOrder) -> Done[None] | Rejected | Unknown:
        stub = self._stubs.get(target)
        if stub is None:
            self._channels[target] = aio_channel(target, self._auth)
            stub = self._stubs[target] = recharge_pb2_grpc.RechargeCallbacksStub(self._channels[target])
        request = recharge_pb2.RechargeFinished(event_id=event_id, order=order_to_proto(order))
        outcome = await call(
            stub.OnRechargeFinished(request, timeout=self._deadline),
            method="/recharge.v1.RechargeCallbacks/OnRechargeFinished",
        )
        return Done(None, outcome.latency_ms) if isinstance(outcome, Done) else outcome

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._stubs.clear()
