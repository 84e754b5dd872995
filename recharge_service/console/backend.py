"""The console's one way to the recharge center: RechargeOps (and RechargeCenter.GetRechargeOrder).

For every request the console mints a short-lived operator token for the logged-in operator —
their subject and their roles, signed with the auth key the recharge center verifies — so the
recharge center authorizes and audits the operator, never the console and never a typed-in name.
The console calls nothing else: not the card system, not WeChat Pay.

A failed call becomes :class:`CallFailed` with our reason code (the ErrorInfo reason the recharge
center sent; for a status without one, a code of our own: ``NOT_AVAILABLE`` for an RPC this
recharge center does not implement yet, ``RECHARGE_CENTER_UNREACHABLE``, ``NO_ANSWER_IN_TIME``,
``NOT_FOUND``, ``INVALID_ARGUMENT``), which the pages show in words — never an exception's name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.auth import bearer_metadata, issue_token
from rc_common.grpc_status import error_field, error_reason
from recharge_service.console.settings import CallSettings

#: Reasons for statuses that carry none.
_FALLBACK_REASONS = {
    grpc.StatusCode.UNIMPLEMENTED: "NOT_AVAILABLE",
    grpc.StatusCode.UNAVAILABLE: "RECHARGE_CENTER_UNREACHABLE",
    grpc.StatusCode.DEADLINE_EXCEEDED: "NO_ANSWER_IN_TIME",
    grpc.StatusCode.CANCELLED: "NO_ANSWER_IN_TIME",
    grpc.StatusCode.NOT_FOUND: "NOT_FOUND",
    grpc.StatusCode.INVALID_ARGUMENT: "INVALID_ARGUMENT",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "OVERLOADED",
    grpc.StatusCode.PERMISSION_DENIED: "ROLE_REQUIRED",
    grpc.StatusCode.UNAUTHENTICATED: "AUTHENTICATION_REQUIRED",
    grpc.StatusCode.INTERNAL: "INTERNAL",
    grpc.StatusCode.UNKNOWN: "INTERNAL",
}


class CallFailed(Exception):
    """A call the recharge center refused or did not answer.

    ``reason``: our reason code; ``code``: the gRPC status name; ``detail``: the recharge
    center's own message (operator-facing text, never a traceback); ``field``: the request field
    an INVALID_ARGUMENT names."""

    def __init__(self, reason: str, code: str, detail: str = "", field: str = "") -> None:
        super().__init__(f"{code} {reason}: {detail}")
        self.reason = reason
        self.code = code
        self.detail = detail
        self.field = field

    @property
    def not_available(self) -> bool:
        return self.reason == "NOT_AVAILABLE"

    @classmethod
    def from_rpc(cls, error: grpc.aio.AioRpcError) -> CallFailed:
        code = error.code()
        reason = error_reason(error) or _FALLBACK_REASONS.get(code, code.name)
        detail = error.details() or ""
        if code in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE) and not error_reason(error):
            detail = ""  # the transport's own text ("Method not found!", socket errors) says nothing more
        return cls(reason, code.name, detail, error_field(error))


@dataclass(frozen=True)
class Operator:
    """The logged-in person the console acts for."""

    subject: str
    roles: frozenset[str]


class Calls:
    """The recharge center's RPCs as one operator: each call carries a token for them."""

    def __init__(
        self,
        ops: recharge_pb2_grpc.RechargeOpsStub,
        center: recharge_pb2_grpc.RechargeCenterStub,
        metadata: tuple[tuple[str, str], ...],
        settings: CallSettings,
    ) -> None:
        self._ops = ops
        self._center = center
        self._metadata = metadata
        self._settings = settings

    async def _call(self, method: Callable[..., Any], request: Any, deadline: float) -> Any:
        try:
            return await method(request, timeout=deadline, metadata=self._metadata)
        except grpc.aio.AioRpcError as error:
            raise CallFailed.from_rpc(error) from None

    async def read(self, name: str, request: Any) -> Any:
        """A RechargeOps read (``ListAnomalies``, ``InspectOrder``, ...)."""
        return await self._call(getattr(self._ops, name), request, self._settings.deadline)

    async def act(self, name: str, request: Any) -> Any:
        """A RechargeOps action (``ResolveAnomaly``, ``DecideApproval``): the longer deadline."""
        return await self._call(getattr(self._ops, name), request, self._settings.action_deadline)

    async def reconcile(self, request: recharge_pb2.RunReconciliationRequest) -> Any:
        return await self._call(self._ops.RunReconciliation, request, self._settings.reconcile_deadline)

    async def order(self, order_no: str, merchant_id: str) -> Any:
        request = recharge_pb2.GetRechargeOrderRequest(order_no=order_no, merchant_id=merchant_id)
        return await self._call(self._center.GetRechargeOrder, request, self._settings.deadline)


class Backend:
    """One channel to the recharge center for the whole process; ``calls(operator)`` per request."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        auth_key: bytes,
        settings: CallSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._channel = channel
        self._key = auth_key
        self._settings = settings
        self._ops = recharge_pb2_grpc.RechargeOpsStub(channel)
        self._center = recharge_pb2_grpc.RechargeCenterStub(channel)
        self._clock = clock
        self._hold: tuple[float, int] | None = None  # (when read, seconds)

    def calls(self, operator: Operator) -> Calls:
        token = issue_token(self._key, operator.subject, operator.roles, self._settings.token_ttl)
        return Calls(self._ops, self._center, bearer_metadata(token), self._settings)

    def remember_hold(self, seconds: int) -> None:
        """A hold window the recharge center just told (InspectOrder, GetOpsHealth)."""
        if seconds > 0:
            self._hold = (self._clock(), seconds)

    async def hold_seconds(self, calls: Calls) -> int:
        """The recharge center's hold window (GetOpsHealth, reused ``hold_cache`` seconds); the
        ``hold_fallback`` setting when it does not say."""
        if self._hold is not None and self._clock() - self._hold[0] < self._settings.hold_cache:
            return self._hold[1]
        seconds = 0
        try:
            health = await calls.read("GetOpsHealth", recharge_pb2.GetOpsHealthRequest())
            seconds = int(health.hold_seconds)
        except CallFailed:
            pass  # not told: the fallback, asked again after hold_cache
        seconds = seconds or int(self._settings.hold_fallback)
        self._hold = (self._clock(), seconds)
        return seconds

    async def close(self) -> None:
        await self._channel.close()
