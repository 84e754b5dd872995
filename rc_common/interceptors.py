"""The base of the servers' unary interceptors: wrap each method's handler once, not per call."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import Any

import grpc


class UnaryWrappingInterceptor(grpc.aio.ServerInterceptor, abc.ABC):  # type: ignore[misc]
    """Wraps the unary-unary handler of every method not under ``exempt`` prefixes with
    ``_wrap(method, handler)``, built on a method's first call and reused (building a handler per
    call costs every RPC)."""

    exempt: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or handler.unary_unary is None or method.startswith(self.exempt):
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    @abc.abstractmethod
    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler: ...
