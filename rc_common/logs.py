"""Structured logs (structlog) with request-scoped context.

Event names are snake_case; fields are key/value. ``RequestContextInterceptor`` binds the RPC
method and request id (``x-request-id`` metadata, or a fresh one) for the duration of a call.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
import uuid
from typing import Any

import grpc
import structlog

from rc_common.interceptors import UnaryWrappingInterceptor


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    """Configure structlog once per process; ``fmt`` is ``console`` or ``json``."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


_log = get_logger("rpc")
_QUIET_PREFIXES = ("/grpc.health", "/grpc.reflection")


class RequestContextInterceptor(UnaryWrappingInterceptor):
    """Binds ``rpc_method`` and ``request_id`` to the log context and logs each call's end.

    The wrapping handler is built once per method (not per call); a call without an
    ``x-request-id`` gets this process's prefix and a counter, which is unique and costs nothing."""

    exempt = _QUIET_PREFIXES

    def __init__(self) -> None:
        super().__init__()
        self._prefix = uuid.uuid4().hex[:8]
        self._ids = itertools.count(1)

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        inner = handler.unary_unary

        async def logged(request: Any, context: grpc.aio.ServicerContext) -> Any:
            given = next((v for k, v in context.invocation_metadata() or () if k == "x-request-id"), "")
            request_id = str(given or f"{self._prefix}-{next(self._ids):x}")
            structlog.contextvars.bind_contextvars(rpc_method=method, request_id=request_id)
            started = time.perf_counter()
            try:
                return await inner(request, context)
            finally:
                code = context.code() if hasattr(context, "code") else None
                _log.debug(
                    "rpc_finished",
                    code=str(code or "OK"),
                    latency_ms=round((time.perf_counter() - started) * 1000, 2),
                )
                structlog.contextvars.unbind_contextvars("rpc_method", "request_id")

        return grpc.unary_unary_rpc_method_handler(
            logged,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
