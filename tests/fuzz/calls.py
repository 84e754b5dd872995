"""The one way the fuzz suite reaches the stack: every RPC of every service we serve, listed from
the protobuf descriptors, called as raw bytes over one channel per service.

``Caller.metadata`` is the single place where call metadata is made: when the services require
a signed operator token (issue 14, item 2), it is attached there and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2

#: Which process serves which service (FaultControl: both simulators' dependencies that have it).
SERVED: tuple[tuple[str, ServiceDescriptor], ...] = (
    ("recharge", recharge_pb2.DESCRIPTOR.services_by_name["RechargeCenter"]),
    ("recharge", recharge_pb2.DESCRIPTOR.services_by_name["RechargeOps"]),
    ("recharge", wechatpay_pb2.DESCRIPTOR.services_by_name["PaymentNotifications"]),
    ("card", card_pb2.DESCRIPTOR.services_by_name["CardSystem"]),
    ("card", card_pb2.DESCRIPTOR.services_by_name["CardAdmin"]),
    ("card", faults_pb2.DESCRIPTOR.services_by_name["FaultControl"]),
    ("wechat", wechatpay_pb2.DESCRIPTOR.services_by_name["PaymentGateway"]),
    ("wechat", wechatpay_pb2.DESCRIPTOR.services_by_name["PayerSimulator"]),
    ("wechat", wechatpay_pb2.DESCRIPTOR.services_by_name["MessageSimulator"]),
    ("wechat", faults_pb2.DESCRIPTOR.services_by_name["FaultControl"]),
)


@dataclass(frozen=True)
class Rpc:
    target: str  # recharge | card | wechat
    method: MethodDescriptor

    def __repr__(self) -> str:
        return self.name

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def name(self) -> str:
        return f"{self.target}:{self.method.containing_service.name}.{self.method.name}"

    @property
    def request_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.input_type)

    def decodes(self, payload: bytes) -> bool:
        """True when ``payload`` is a well-formed request of this RPC (what the server decodes)."""
        try:
            self.request_class.FromString(payload)
        except (DecodeError, ValueError, RuntimeError):
            return False
        return True


def every_rpc() -> list[Rpc]:
    return [Rpc(target, method) for target, service in SERVED for method in service.methods]


@dataclass(frozen=True)
class Answer:
    code: grpc.StatusCode
    details: str
    response: bytes = b""


@dataclass
class Caller:
    """Calls by raw bytes; ``addresses``: target -> host:port; ``token``: a bearer token to send
    with every call ("" = none, as in development today)."""

    addresses: Mapping[str, str]
    token: str = ""
    _channels: dict[str, grpc.Channel] = field(default_factory=dict)
    _callables: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def metadata(self, rpc: Rpc) -> Sequence[tuple[str, str]]:
        """The metadata of every call (the one place a credential will be attached)."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def channel(self, target: str) -> grpc.Channel:
        if target not in self._channels:
            self._channels[target] = grpc.insecure_channel(self.addresses[target])
        return self._channels[target]

    def call(self, rpc: Rpc, payload: bytes, timeout: float) -> Answer:
        key = f"{rpc.target}{rpc.path}"
        if key not in self._callables:
            self._callables[key] = self.channel(rpc.target).unary_unary(rpc.path)  # bytes in, bytes out
        try:
            response = self._callables[key](payload, timeout=timeout, metadata=self.metadata(rpc))
        except grpc.RpcError as exc:
            return Answer(exc.code(), exc.details() or "")  # type: ignore[attr-defined]
        return Answer(grpc.StatusCode.OK, "", bytes(response))

    def send(self, rpc: Rpc, request: Message, timeout: float) -> Answer:
        return self.call(rpc, request.SerializeToString(), timeout)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
        self._callables.clear()
