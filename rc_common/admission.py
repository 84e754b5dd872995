"""Overload is shed, not absorbed: admission control per method, and the caller's deadline.

``AdmissionInterceptor`` lets at most ``concurrent`` calls of one method run at once; up to
``queued`` more wait (first come, first served) for at most ``queue_wait`` seconds — less when the
caller's own deadline comes sooner. A call that finds the queue full is answered at once, and one
that waited its time out is answered then: RESOURCE_EXHAUSTED with ``ErrorInfo(reason="OVERLOADED")``
(metadata: ``method``, ``retry_after_ms``). Nothing was started, so for the caller it is a clean "not
now": a create retried later with the same idempotency key does the work once.

Each method has its own gate, so a burst of one method never starves another: in the recharge
center a flood of ``CreateRechargeOrder`` leaves ``Notify`` (WeChat's notifications), the reads and
the operators' calls their own room. A shed ``Notify`` is safe — only SUCCESS promises a durable
payment record (I5), and WeChat retries anything else on its schedule — but it should be rare, so
its limit may be raised with a per-method override. Health checks and reflection are never gated.

A call whose caller already gave up (cancelled, or its deadline passed while it waited) is not
started: the interceptor answers DEADLINE_EXCEEDED without running the handler — in the recharge
center. The simulators pass ``drop_gone=False``: they stand for systems that do not know our
deadlines, and a call processed after its caller gave up is part of their fault model (late
success).

The caller's deadline rides in a context variable while the handler runs: ``remaining()`` says
how long the caller still waits, ``budget(own, margin)`` what an outgoing call made on its behalf
may take (``min(own, remaining - margin)``). Work that outlives the request (background steps, the
sentinel) runs ``detached()``, under its own settings only.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import grpc

from rc_common.errors import Exhausted
from rc_common.grpc_status import abort_with
from rc_common.interceptors import UnaryWrappingInterceptor
from rc_common.logs import get_logger

log = get_logger("admission")

OVERLOADED = "OVERLOADED"
#: Never gated: a probe must see a busy server as SERVING, and grpcurl must still list services.
EXEMPT = ("/grpc.health.v1.Health/", "/grpc.reflection.")

#: When the caller of the RPC being served gives up, on ``time.monotonic()``'s clock.
_caller_deadline: ContextVar[float | None] = ContextVar("rc_caller_deadline", default=None)


def remaining() -> float | None:
    """Seconds the caller of the RPC being served still waits (None: no caller deadline)."""
    at = _caller_deadline.get()
    return None if at is None else at - time.monotonic()


def budget(own: float, margin: float) -> float:
    """What an outgoing call may take: ``own`` (its setting), or less when the caller will give
    up sooner (its remaining time minus ``margin``). Zero or less: do not start it."""
    left = remaining()
    return own if left is None else min(own, left - margin)


@contextlib.contextmanager
def serving(deadline: float | None) -> Iterator[None]:
    """Run the block for a caller who waits ``deadline`` more seconds (None: no deadline)."""
    token = _caller_deadline.set(None if deadline is None else time.monotonic() + deadline)
    try:
        yield
    finally:
        _caller_deadline.reset(token)


def detach() -> None:
    """From here on (this task and those it starts), no caller's deadline: for work that goes on
    after the answer (a task's context is a copy, so the request is not affected)."""
    _caller_deadline.set(None)


@dataclass(frozen=True)
class Limit:
    concurrent: int
    queued: int


@dataclass(frozen=True)
class AdmissionPolicy:
    """``default`` for every gated method; ``overrides`` by method name (``Notify``) or full name
    (``/wechatpay.v1.PaymentNotifications/Notify``). ``concurrent`` 0: that method is not gated."""

    default: Limit
    queue_wait: float
    overrides: Mapping[str, Limit] = field(default_factory=dict)

    @classmethod
    def of(cls, concurrent: int, queued: int, queue_wait: float, overrides: str = "") -> AdmissionPolicy:
        """From the settings: ``--max-concurrent-calls``, ``--max-queued-calls``,
        ``--max-queue-wait`` and the overrides (``parse_overrides``)."""
        return cls(Limit(concurrent, queued), queue_wait, parse_overrides(overrides))

    def limit_for(self, method: str) -> Limit | None:
        limit = self.overrides.get(method) or self.overrides.get(method.rpartition("/")[2]) or self.default
        return limit if limit.concurrent > 0 else None


def parse_overrides(text: str, setting: str = "admission_overrides") -> dict[str, Limit]:
    """``"Notify=256/1024,CreateRechargeOrder=32/64"`` (method=concurrent/queued); raises
    ``ValueError`` naming ``setting`` on anything else."""
    overrides: dict[str, Limit] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, numbers = part.partition("=")
        concurrent, _, queued = numbers.partition("/")
        if not name.strip() or not concurrent.strip().isdigit() or not queued.strip().isdigit():
            raise ValueError(f"{setting}: expected method=concurrent/queued, got {part!r}")
        overrides[name.strip()] = Limit(int(concurrent), int(queued))
    return overrides


class _Gate:
    """``limit.concurrent`` slots and a FIFO of at most ``limit.queued`` waiters; a slot freed is
    handed to the first waiter still waiting."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def enter(self, wait: float) -> bool:
        """Take a slot (True), or give up: queue full, or ``wait`` seconds passed (False)."""
        if self.running < self.limit.concurrent and not self._waiters:
            self.running += 1
            return True
        if len(self._waiters) >= self.limit.queued or wait <= 0:
            return False
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(slot)
        try:
            await asyncio.wait((slot,), timeout=wait)
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():
                self.leave()  # handed a slot just as the caller left: pass it on
            else:
                slot.cancel()
            raise
        if slot.done():
            return True
        slot.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(slot)
        return False

    def leave(self) -> None:
        while self._waiters:
            slot = self._waiters.popleft()
            if not slot.done():
                slot.set_result(None)  # the slot passes to it: ``running`` stays
                return
        self.running -= 1


class AdmissionInterceptor(UnaryWrappingInterceptor):
    """Per-method concurrency caps with a bounded queue (see the module's doc)."""

    exempt = EXEMPT

    def __init__(self, policy: AdmissionPolicy, *, drop_gone: bool = True) -> None:
        super().__init__()
        self.policy = policy
        self.drop_gone = drop_gone
        self._gates: dict[str, _Gate] = {}
        #: Calls answered OVERLOADED, by method (tests and logs).
        self.shed: dict[str, int] = {}

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        inner = handler.unary_unary
        limit = self.policy.limit_for(method)
        gate = self._gates.setdefault(method, _Gate(limit)) if limit is not None else None

        async def admitted(request: Any, context: grpc.aio.ServicerContext) -> Any:
            left = context.time_remaining()
            if gate is not None:
                wait = self.policy.queue_wait
                if left is not None and self.drop_gone:
                    wait = min(wait, left)
                if not await gate.enter(wait):
                    await self._shed(method, context)
                try:
                    return await self._run(inner, request, context)
                finally:
                    gate.leave()
            return await self._run(inner, request, context)

        return grpc.unary_unary_rpc_method_handler(
            admitted,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _run(self, inner: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        left = context.time_remaining()
        gone = context.cancelled() or (left is not None and left <= 0)
        if gone and self.drop_gone:  # nobody waits for the answer
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the caller gave up before it started")
        with serving(left):
            return await inner(request, context)

    async def _shed(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self.shed[method] = self.shed.get(method, 0) + 1
        count = self.shed[method]
        if count == 1 or math.log2(count).is_integer():  # 1, 2, 4, 8, ...: a flood logs a few lines
            log.warning("calls_shed", method=method, shed=count)
        retry_after_ms = max(1, round(self.policy.queue_wait * 1000))
        await abort_with(
            context,
            Exhausted(
                OVERLOADED,
                "the server is at its limit for this method; retry later (a create with the same key)",
                method=method,
                retry_after_ms=str(retry_after_ms),
            ),
        )
