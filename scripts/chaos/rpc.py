"""Small client-side helpers shared by the chaos driver, the observer and the bench.

``Stubs`` opens one channel per service and holds every stub a run uses; a target that lists several
replicas (``ipv4:127.0.0.1:P1,127.0.0.1:P2``) gets client-side ``round_robin``, which spreads the
calls over the replicas and passes over one that is down (:func:`open_channel`). ``retrying`` repeats a
call while its outcome is *unknown* (the driver's own calls ride through faults and restarts with
the same idempotency key), and returns the three-valued outcome of :mod:`rc_common.outcomes`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

import grpc

from protos.card.v1 import card_pb2_grpc
from protos.faults.v1 import faults_pb2_grpc
from protos.recharge.v1 import recharge_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2_grpc
from rc_common.channels import ClientAuth, aio_channel
from rc_common.outcomes import Done, Rejected, Unknown, call

T = TypeVar("T")

_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # Reconnect fast after the crash profile restarts the recharge center.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]


#: Spread calls over every address of a multi-address target (the default, pick_first, uses one).
ROUND_ROBIN = ("grpc.lb_policy_name", "round_robin")


def open_channel(target: str, auth: ClientAuth | None = None) -> grpc.aio.Channel:
    """A channel to ``target`` presenting ``auth`` (the stack's operator token, its TLS files);
    ``round_robin`` when it names several addresses."""
    options: list[tuple[str, str | int]] = list(_CHANNEL_OPTIONS)
    if "," in target:
        options.append(ROUND_ROBIN)
    return aio_channel(target, auth, options=options)


@dataclass
class Stubs:
    recharge_channel: grpc.aio.Channel
    card_channel: grpc.aio.Channel
    wechat_channel: grpc.aio.Channel

    @classmethod
    def open(cls, recharge: str, card: str, wechat: str, auth: ClientAuth | None = None) -> Stubs:
        """Channels presenting ``auth`` (RechargeOps, CardAdmin and FaultControl need its token)."""
        return cls(open_channel(recharge, auth), open_channel(card, auth), open_channel(wechat, auth))

    async def __aenter__(self) -> Stubs:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for channel in (self.recharge_channel, self.card_channel, self.wechat_channel):
            await channel.close()

    @property
    def center(self) -> recharge_pb2_grpc.RechargeCenterStub:
        return recharge_pb2_grpc.RechargeCenterStub(self.recharge_channel)

    @property
    def ops(self) -> recharge_pb2_grpc.RechargeOpsStub:
        return recharge_pb2_grpc.RechargeOpsStub(self.recharge_channel)

    @property
    def card(self) -> card_pb2_grpc.CardSystemStub:
        return card_pb2_grpc.CardSystemStub(self.card_channel)

    @property
    def card_admin(self) -> card_pb2_grpc.CardAdminStub:
        return card_pb2_grpc.CardAdminStub(self.card_channel)

    @property
    def card_faults(self) -> faults_pb2_grpc.FaultControlStub:
        return faults_pb2_grpc.FaultControlStub(self.card_channel)

    @property
    def gateway(self) -> wechatpay_pb2_grpc.PaymentGatewayStub:
        return wechatpay_pb2_grpc.PaymentGatewayStub(self.wechat_channel)

    @property
    def payer(self) -> wechatpay_pb2_grpc.PayerSimulatorStub:
        return wechatpay_pb2_grpc.PayerSimulatorStub(self.wechat_channel)

    @property
    def wechat_faults(self) -> faults_pb2_grpc.FaultControlStub:
        return faults_pb2_grpc.FaultControlStub(self.wechat_channel)


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    attempts: int = 40,
    backoff_s: float = 0.1,
    backoff_max_s: float = 1.0,
) -> Done[T] | Rejected | Unknown:
    """Call ``attempt()`` until done or definitively refused, at most ``attempts`` times."""
    outcome: Done[T] | Rejected | Unknown = Unknown("UNKNOWN", "not attempted", 0.0)
    delay = backoff_s
    for _ in range(attempts):
        outcome = await call(attempt())
        if not isinstance(outcome, Unknown) or outcome.code == "UNIMPLEMENTED":
            return outcome
        await asyncio.sleep(delay)
        delay = min(delay * 2, backoff_max_s)
    return outcome


def is_unimplemented(error: BaseException) -> bool:
    return isinstance(error, grpc.aio.AioRpcError) and error.code() == grpc.StatusCode.UNIMPLEMENTED
