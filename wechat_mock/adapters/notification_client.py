"""Delivers notifications to the merchant: ``wechatpay.v1.PaymentNotifications/Notify`` — WeChat's
HTTP POST carried as gRPC (same headers, same body bytes).

One client per target (``bootstrap`` puts one per ``--notify-target`` entry in a
:class:`~wechat_mock.service_layer.replicas.ReplicaSet`). Only an answer with ``code == "SUCCESS"``
is an acknowledgement; any other code is the merchant refusing it (REFUSED); any RPC error and a
timeout are NO_ANSWER (the merchant's recharge center never fails Notify at the gRPC level, so
these say the replica is down, unreachable, overloaded or broken: another one may answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import grpc

from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.channels import ClientAuth, aio_channel
from wechat_mock.service_layer.ports import DeliveryOutcome, DeliveryResult


class GrpcNotificationClient:
    def __init__(self, target: str, auth: ClientAuth | None = None) -> None:
        self._target = target
        self._auth = auth  # our certificate (CN wechat) when TLS is on
        self._channel: grpc.aio.Channel | None = None
        self._stub: wechatpay_pb2_grpc.PaymentNotificationsStub | None = None
        self._closing: set[asyncio.Future[None]] = set()

    def _ensure_stub(self) -> wechatpay_pb2_grpc.PaymentNotificationsStub:
        if self._stub is None:
            self._channel = aio_channel(self._target, self._auth)
            self._stub = wechatpay_pb2_grpc.PaymentNotificationsStub(self._channel)
        return self._stub

    async def deliver(self, headers: Mapping[str, str], body: bytes, timeout_s: float) -> DeliveryResult:
        request = wechatpay_pb2.NotifyRequest(headers=dict(headers), body=body)
        try:
            ack = await self._ensure_stub().Notify(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code is grpc.StatusCode.UNAVAILABLE:
                # Like WeChat's next HTTP POST, the next attempt dials afresh (no channel backoff).
                self._reset(grace_s=timeout_s)
            name = code.name if code else "UNKNOWN"
            return self._result(DeliveryOutcome.NO_ANSWER, f"gave no answer: {name}: {error.details()}")
        if ack.code == "SUCCESS":
            return self._result(DeliveryOutcome.ACKNOWLEDGED, "answered SUCCESS")
        return self._result(DeliveryOutcome.REFUSED, f"answered {ack.code or '(empty)'}: {ack.message}")

    def _result(self, outcome: DeliveryOutcome, detail: str) -> DeliveryResult:
        return DeliveryResult(outcome, f"{self._target} {detail}", self._target)

    def _reset(self, grace_s: float) -> None:
        """Detach the channel; calls still on it finish (up to ``grace_s``) before it closes."""
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            task = asyncio.ensure_future(channel.close(grace=grace_s))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None
