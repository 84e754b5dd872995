"""Applies transport faults to a grpc.aio server.

- UNAVAILABLE / OUTAGE: answer UNAVAILABLE before doing anything.
- DELAY: a lock wait. For methods the service marks lock-aware, the service itself calls
  :func:`hold_if_delayed` right after taking its lock (so other callers queue behind it); for the
  others the interceptor waits before processing.
- LATE_SUCCESS: the call is processed ``delay_ms`` later in a task shielded from the RPC's
  cancellation; the caller gets no answer before its deadline (DEADLINE_EXCEEDED if it set none).
- LOST_RESPONSE: processed and committed, then answered UNAVAILABLE.

In the last two the handler runs with a detached context: its ``abort`` does not touch the real
RPC, so a business refusal is "lost" just like a success.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import grpc

from rc_common.faults.engine import FaultEngine, FaultKind
from rc_common.interceptors import UnaryWrappingInterceptor
from rc_common.logs import get_logger

log = get_logger("faults")

TRANSPORT_KINDS = frozenset(
    {
        FaultKind.UNAVAILABLE,
        FaultKind.OUTAGE,
        FaultKind.DELAY,
        FaultKind.LATE_SUCCESS,
        FaultKind.LOST_RESPONSE,
    }
)
EXEMPT_PREFIXES = ("/grpc.health", "/grpc.reflection", "/faults.v1.")

_pending_hold: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "pending_fault_hold", default=None
)


async def hold_if_delayed() -> None:
    """Called by a service while it holds its lock: applies a pending DELAY fault once."""
    delay = _pending_hold.get()
    if delay:
        _pending_hold.set(None)
        log.info("fault_lock_hold", delay_s=delay)
        await asyncio.sleep(delay)


class DetachedAbort(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class DetachedContext:
    """A servicer context whose caller has gone: abort raises locally, no deadline applies."""

    def __init__(self, real: grpc.aio.ServicerContext) -> None:
        self._real = real

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> None:
        raise DetachedAbort(code, details)

    def time_remaining(self) -> float | None:
        return None

    def cancelled(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class FaultInterceptor(UnaryWrappingInterceptor):
    exempt = EXEMPT_PREFIXES

    def __init__(self, engine: FaultEngine, lock_aware_methods: Collection[str] = ()) -> None:
        super().__init__()
        self._engine = engine
        self._lock_aware = frozenset(lock_aware_methods)
        self._background: set[asyncio.Task[Any]] = set()

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        inner = handler.unary_unary

        async def faulted(request: Any, context: grpc.aio.ServicerContext) -> Any:
            rule = self._engine.draw(method, TRANSPORT_KINDS)
            if rule is None:
                return await inner(request, context)
            log.info("fault_injected", method=method, kind=rule.kind.name, delay_ms=rule.delay_ms)
            if rule.kind in (FaultKind.UNAVAILABLE, FaultKind.OUTAGE):
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"injected {rule.kind.name}")
            if rule.kind is FaultKind.DELAY:
                if method in self._lock_aware:
                    token = _pending_hold.set(rule.delay_s)
                    try:
                        return await inner(request, context)
                    finally:
                        _pending_hold.reset(token)
                await asyncio.sleep(rule.delay_s)
                return await inner(request, context)
            if rule.kind is FaultKind.LOST_RESPONSE:
                await self._run_detached(inner, request, context)
                await context.abort(grpc.StatusCode.UNAVAILABLE, "injected LOST_RESPONSE")
            # LATE_SUCCESS
            task = asyncio.ensure_future(self._late(inner, request, context, rule.delay_s))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            remaining = context.time_remaining()
            if remaining is None:
                await asyncio.shield(task)
            else:
                # Hold the answer past the caller's deadline; gRPC cancels this coroutine then.
                await asyncio.sleep(remaining + 0.05)
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED, "injected LATE_SUCCESS: processed after the wait"
            )

        return grpc.unary_unary_rpc_method_handler(
            faulted,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _run_detached(
        self, inner: Callable[..., Awaitable[Any]], request: Any, context: grpc.aio.ServicerContext
    ) -> None:
        try:
            await inner(request, DetachedContext(context))
        except DetachedAbort as exc:
            log.info("fault_detached_answer_lost", code=exc.code.name, details=exc.details)

    async def _late(
        self,
        inner: Callable[..., Awaitable[Any]],
        request: Any,
        context: grpc.aio.ServicerContext,
        delay_s: float,
    ) -> None:
        await asyncio.sleep(delay_s)
        try:
            await self._run_detached(inner, request, context)
            log.info("fault_late_success_processed")
        except Exception:  # the caller is gone; record and carry on
            log.exception("fault_late_success_failed")

    async def drain(self) -> None:
        """Wait for late work still in flight (used on graceful shutdown and in tests)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
