"""Log lines: one format per process, exceptions with their traceback, the process's fields on all."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from rc_common import logs
from rc_common.logs import QUIET_LOGGERS, bind_process, configure_logging, get_logger

Configure = Callable[..., io.StringIO]


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """``configure(level, fmt)`` logs to a buffer it returns; the process's logging is put back
    afterwards (structlog, the root handler and levels, the exception hooks, the bound fields)."""
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *QUIET_LOGGERS)}
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.setattr(logs, "_process_fields", {})

    def configure(level: str = "info", fmt: str = "json") -> io.StringIO:
        out = io.StringIO()
        configure_logging(level, fmt, stream=out)
        return out

    yield configure
    structlog.reset_defaults()
    if logs._handler is not None:
        root.removeHandler(logs._handler)
        logs._handler = None
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(False)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, each parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_logged_exception_carries_its_type_and_traceback_in_json(configure: Configure) -> None:
    out = configure()
    orders: dict[str, int] = {}
    try:
        orders["missing"]
    except KeyError:
        get_logger("test").exception("lookup_failed", order_no="R1")
    (line,) = lines(out)
    assert (line["event"], line["level"], line["order_no"]) == ("lookup_failed", "error", "R1")
    assert "exc_info" not in line
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in line["exception"]
    assert "test_a_logged_exception_carries_its_type_and_traceback_in_json" in line["exception"]


def test_standard_library_lines_are_json_with_their_logger_and_traceback(configure: Configure) -> None:
    out = configure()
    logging.getLogger("grpc._cython.cygrpc").warning("channel %s closed", "x")
    try:
        raise ValueError("bad task")
    except ValueError:
        logging.getLogger("asyncio").error("Task exception was never retrieved", exc_info=True)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
    grpc_line, asyncio_line, warning_line = lines(out)
    assert (grpc_line["event"], grpc_line["level"], grpc_line["logger"]) == (
        "channel x closed",
        "warning",
        "grpc._cython.cygrpc",
    )
    assert asyncio_line["logger"] == "asyncio"
    assert "ValueError: bad task" in asyncio_line["exception"]
    assert warning_line["logger"] == "py.warnings" and "deprecated thing" in warning_line["event"]


def test_scheduler_chatter_is_quiet_at_info_and_shown_at_debug(configure: Configure) -> None:
    chatter = logging.getLogger("apscheduler.executors.default")
    out = configure("info")
    chatter.info('Running job "sentinel"')
    chatter.warning("Run time of job was missed")
    assert [line["event"] for line in lines(out)] == ["Run time of job was missed"]
    out = configure("debug")
    chatter.info('Running job "sentinel"')
    assert [line["event"] for line in lines(out)] == ['Running job "sentinel"']


def test_every_line_carries_the_fields_bound_to_the_process(configure: Configure) -> None:
    out = configure()
    bind_process(node="n1")
    get_logger("test").info("order_created", order_no="R1")
    logging.getLogger("apscheduler.scheduler").warning("scheduler busy")
    get_logger("test").info("visit", node="explicit")  # a field given on the line wins
    assert [line["node"] for line in lines(out)] == ["n1", "n1", "explicit"]


def test_an_uncaught_exception_is_one_json_line_with_its_traceback(configure: Configure) -> None:
    out = configure()
    try:
        raise RuntimeError("schema is behind")
    except RuntimeError:
        kind, value, tb = sys.exc_info()
        assert kind is not None and value is not None
        sys.excepthook(kind, value, tb)
    (line,) = lines(out)
    assert (line["event"], line["level"]) == ("uncaught_exception", "critical")
    assert "RuntimeError: schema is behind" in line["exception"]


def test_console_lines_keep_the_traceback_readable(configure: Configure) -> None:
    out = configure(fmt="console")
    try:
        raise KeyError("missing")
    except KeyError:
        get_logger("test").exception("lookup_failed")
    text = out.getvalue()
    assert "lookup_failed" in text and "Traceback (most recent call last):" in text
    assert not text.lstrip().startswith("{")
