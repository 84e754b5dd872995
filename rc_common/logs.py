"""Structured logs (structlog) with request-scoped context.

Event names are snake_case; fields are key/value. ``RequestContextInterceptor`` binds the RPC
method and request id (``x-request-id`` metadata, or a fresh one) for the duration of a call.
``bind_process`` adds fields every line of the process carries (the recharge center's ``node``).

One format per process: structlog's own lines and the standard library's (APScheduler, grpc,
asyncio, SQLAlchemy, ``warnings``) go through the same processors and renderer, so with
``--log-format json`` every line on stderr is one JSON object, an exception's traceback included
(``exception``), and an uncaught exception ends the process with a line of the same format.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
import uuid
from types import TracebackType
from typing import Any, TextIO

import grpc
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from rc_common.interceptors import UnaryWrappingInterceptor

#: Libraries whose routine lines would drown the service's own, each with the level from which
#: they are shown anyway: APScheduler's two INFO lines per job run (every period) at ``debug``;
#: aiosqlite's two DEBUG lines per driver call never. Otherwise these log WARNING and up.
QUIET_LOGGERS = {"apscheduler": logging.DEBUG, "aiosqlite": logging.NOTSET}

_process_fields: dict[str, str] = {}
_handler: logging.Handler | None = None  # the root handler ``configure_logging`` installed


def bind_process(**fields: str) -> None:
    """Fields every log line of this process carries from now on (structlog's and the standard
    library's), e.g. ``node``: unlike context variables, they reach every task and thread."""
    _process_fields.update(fields)


def _add_process_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in _process_fields.items():
        event_dict.setdefault(key, value)
    return event_dict


def _add_logger_name(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A standard-library line says which library logged it."""
    record = event_dict.get("_record")
    if record is not None:
        event_dict.setdefault("logger", record.name)
    return event_dict


def configure_logging(level: str = "info", fmt: str = "console", *, stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library's root logger once per process; ``fmt`` is
    ``console`` or ``json``; lines go to ``stream`` (default stderr), one write per line."""
    out = stream if stream is not None else sys.stderr
    threshold = logging.getLevelNamesMapping()[level.upper()]
    json_lines = fmt == "json"
    common: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_process_fields,
    ]
    # The console renderer prints a traceback itself; JSON needs it as a field.
    final: list[Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if json_lines
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    structlog.configure(
        processors=[*common, *final],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.WriteLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    _route_stdlib(out, threshold, [*common, _add_logger_name], final)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _route_stdlib(out: TextIO, threshold: int, pre_chain: list[Processor], final: list[Processor]) -> None:
    """The root logger's one handler renders records like structlog's own lines."""
    global _handler
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=pre_chain,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        )
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(threshold)
    _handler = handler
    for name, shown_from in QUIET_LOGGERS.items():
        quiet = threshold > shown_from
        logging.getLogger(name).setLevel(max(threshold, logging.WARNING) if quiet else threshold)
    logging.captureWarnings(True)


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    get_logger("process").critical("uncaught_exception", exc_info=(kind, value, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if issubclass(args.exc_type, SystemExit):  # as the default hook: a thread's exit is no error
        return
    thread = args.thread.name if args.thread is not None else ""
    get_logger("process").critical(
        "uncaught_exception", thread=thread, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
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
