"""How a port adapter calls one RPC of another system: with ``with_retries`` (a fresh deadline per
attempt, every attempt on the order's timeline under the method's full name), the done answer
converted to the port's value; a refusal or an unknown outcome is passed on as it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from rc_common.outcomes import Done, Rejected, Unknown
from recharge_service.adapters.retrying import RetryPolicy, with_retries
from recharge_service.service_layer.ports import Timeline

V = TypeVar("V")


class RpcCaller:
    """The RPCs of one generated stub, named on the timeline as ``{methods}{Rpc}``, retried under
    ``policy`` unless a call names its own."""

    def __init__(self, stub: Any, methods: str, timeline: Timeline, policy: RetryPolicy) -> None:
        self._stub = stub
        self._methods = methods  # e.g. "/card.v1.CardSystem/"
        self._timeline = timeline
        self._policy = policy

    async def call(
        self,
        rpc: str,
        request: Any,
        order_no: str,
        convert: Callable[[Any], V],
        *,
        announce: bool = False,
        describe: Callable[[Any], str] | None = None,
        policy: RetryPolicy | None = None,
    ) -> Done[V] | Rejected | Unknown:
        """``stub.<rpc>(request)``; ``announce`` for calls that change something elsewhere;
        ``describe`` says what a done answer was, for the timeline row."""
        send = getattr(self._stub, rpc)
        outcome = await with_retries(
            self._methods + rpc,
            order_no,
            lambda deadline: send(request, timeout=deadline),
            policy or self._policy,
            self._timeline,
            announce=announce,
            describe=describe,
        )
        return Done(convert(outcome.value), outcome.latency_ms) if isinstance(outcome, Done) else outcome
