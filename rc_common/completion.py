"""A call the server has started runs to its end, even when its caller gives up.

grpc.aio cancels a handler when its caller's deadline passes or the caller cancels. In the
recharge center that cancel can land anywhere in a flow: between the commit that records a
payment (with the confirm's ``sent`` row and the credit's lease) and the task that would make the
call; in the middle of an outgoing call, whose answer is then never written. The order is left
to the sentinel after its lease runs out, its timeline says a call was sent that nobody made or
answered, and another replica's call on it seems to overlap the one never finished (I7).

``RunToCompletionInterceptor`` runs each handler as its own task and awaits it shielded: the
caller's cancel ends the wait for the answer, never the work. A finished task's answer is simply
dropped; its failure is logged. Admission control (a cap on calls in flight) must count these
tasks, so it belongs inside this interceptor (later in the server's list).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from rc_common.interceptors import UnaryWrappingInterceptor
from rc_common.logs import get_logger

log = get_logger("completion")


class RunToCompletionInterceptor(UnaryWrappingInterceptor):
    exempt = ("/grpc.health", "/grpc.reflection")

    def __init__(self) -> None:
        super().__init__()
        self._abandoned: set[asyncio.Task[Any]] = set()

    @property
    def abandoned(self) -> int:
        """Handlers still running whose caller is gone."""
        return len(self._abandoned)

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        inner = handler.unary_unary

        async def to_the_end(request: Any, context: grpc.aio.ServicerContext) -> Any:
            work = asyncio.ensure_future(inner(request, context))
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                if not work.done():
                    self._abandoned.add(work)
                    work.add_done_callback(self._finished(method))
                raise

        return grpc.unary_unary_rpc_method_handler(
            to_the_end,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _finished(self, method: str) -> Any:
        def done(work: asyncio.Task[Any]) -> None:
            self._abandoned.discard(work)
            if work.cancelled():
                return
            error = work.exception()
            # An abort on a call whose caller is gone ends the task with the abort's exception:
            # the answer had nowhere to go, which is not a failure of the work.
            if error is not None and not isinstance(error, grpc.aio.AbortError):
                log.error("abandoned_call_failed", method=method, exc_info=error)
            else:
                log.info("abandoned_call_finished", method=method)

        return done
