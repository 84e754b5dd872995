"""Prometheus metrics: one registry per process, the hooks that feed it, and the ``/metrics`` server.

What each service exports (names are the README's "Operating it" list)::

    rc_grpc_server_handled_total{grpc_method, grpc_code}     calls served (after the policy check)
    rc_grpc_server_handling_seconds{grpc_method}             their latency (histogram)
    rc_calls_refused_total{grpc_method, grpc_code, reason}   calls the policy refused (access.py)
    rc_outgoing_calls_total{target, method, outcome}         attempts at other systems: done/refused/unknown
    rc_outgoing_call_seconds{target, method}                 their latency (histogram)
    rc_notifications_refused_total{reason}                   WeChat notifications answered FAIL
    rc_sentinel_runs_total, rc_sentinel_orders_examined_total, rc_sentinel_orders_resolved_total{result}
    rc_reconciliation_differences{business_date, category}   set by the daily reconciliation

and, read from the recharge center's database at scrape time (``OrderGauges``)::

    rc_orders{status}, rc_oldest_unfinished_order_age_seconds, rc_oldest_manual_review_age_seconds,
    rc_outbox_backlog, rc_outbox_oldest_age_seconds

Nothing is created at import: ``metrics()`` builds the process's registry on first use. With
``RC_METRICS=off`` in the environment (``make bench`` measures the cost that way) nothing is counted:
the hooks return at once and ``server_interceptors()`` is empty. The
``/metrics`` endpoint (``MetricsServer``, aiohttp on the service's own event loop) first lets each
``ScrapeSource`` refresh (the database gauges: one query, cached ``--metrics-cache`` seconds, so
scrapes never load the database), then renders the process registry and the sources'.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import grpc
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from rc_common.interceptors import UnaryWrappingInterceptor
from rc_common.logs import get_logger
from rc_common.settings import parse_listen

log = get_logger("metrics")

#: Latency buckets (seconds) for calls served and made: 1 ms .. 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Business days of reconciliation results kept as series (older ones are dropped).
RECONCILIATION_DAYS_KEPT = 7


class Metrics:
    """The process's registry and the metrics every service shares."""

    def __init__(self) -> None:
        # No *_created series: half the text of a scrape, and nothing here reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        r = self.registry
        self.server_handled = Counter(
            "rc_grpc_server_handled", "gRPC calls served, by method and status code",
            ["grpc_method", "grpc_code"], registry=r,
        )
        self.server_seconds = Histogram(
            "rc_grpc_server_handling_seconds", "latency of gRPC calls served, seconds",
            ["grpc_method"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.refused = Counter(
            "rc_calls_refused", "calls the access policy refused, by method, code and reason",
            ["grpc_method", "grpc_code", "reason"], registry=r,
        )
        self.outgoing = Counter(
            "rc_outgoing_calls", "attempts at calls to other systems, by target, method and outcome "
            "(done, refused, unknown)", ["target", "method", "outcome"], registry=r,
        )
        self.outgoing_seconds = Histogram(
            "rc_outgoing_call_seconds", "latency of attempts at calls to other systems, seconds",
            ["target", "method"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.notifications_refused = Counter(
            "rc_notifications_refused", "WeChat notifications answered FAIL, by reason",
            ["reason"], registry=r,
        )
        self.sentinel_runs = Counter("rc_sentinel_runs", "sentinel runs finished", registry=r)
        self.sentinel_examined = Counter(
            "rc_sentinel_orders_examined", "orders the sentinel claimed and visited", registry=r
        )
        self.sentinel_resolved = Counter(
            "rc_sentinel_orders_resolved", "orders the sentinel visited, by what became of them "
            "(credited, refunded, closed, refunding, manual_review, still_unknown, skipped)",
            ["result"], registry=r,
        )
        self.reconciliation = Gauge(
            "rc_reconciliation_differences", "differences the daily reconciliation found, by "
            "business day and category (0 once a day reconciles)", ["business_date", "category"],
            registry=r,
        )
        self._reconciled: dict[str, set[str]] = {}
        #: The label children of each (full method, outcome) called, looked up once (``labels()``
        #: costs every call otherwise).
        self.outgoing_children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def set_reconciliation(self, business_date: str, category: str, count: int) -> None:
        """Record ``count`` differences of ``category`` for ``business_date`` (YYYY-MM-DD); only the
        latest ``RECONCILIATION_DAYS_KEPT`` days stay exported."""
        self.reconciliation.labels(business_date, category).set(count)
        self._reconciled.setdefault(business_date, set()).add(category)
        for old in sorted(self._reconciled)[:-RECONCILIATION_DAYS_KEPT]:
            for name in self._reconciled.pop(old):
                self.reconciliation.remove(old, name)


_metrics: Metrics | None = None
_enabled: bool | None = None
#: The environment variable that turns the counting off (``off``), for measuring what it costs.
SWITCH = "RC_METRICS"


def enabled() -> bool:
    """Whether this process counts (``RC_METRICS`` is not ``off``; read once)."""
    global _enabled
    if _enabled is None:
        _enabled = os.environ.get(SWITCH, "on").strip().lower() != "off"
    return _enabled


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """What a bootstrap puts in its interceptor list: the server metrics, unless counting is off."""
    return [ServerMetricsInterceptor()] if enabled() else []


def metrics() -> Metrics:
    """This process's metrics (made on first use)."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


def set_reconciliation(business_date: str, category: str, count: int) -> None:
    if enabled():
        metrics().set_reconciliation(business_date, category, count)


def observe_outgoing(full_method: str, outcome: str, seconds: float) -> None:
    """One attempt at ``/package.Service/Method`` ended as ``outcome`` after ``seconds``."""
    if not enabled():
        return
    m = metrics()
    children = m.outgoing_children.get((full_method, outcome))
    if children is None:
        target, _, method = full_method.strip("/").rpartition("/")
        children = (m.outgoing.labels(target, method, outcome), m.outgoing_seconds.labels(target, method))
        m.outgoing_children[(full_method, outcome)] = children
    children[0].inc()
    children[1].observe(seconds)


def count_refusal(method: str, code: str, reason: str) -> None:
    if enabled():
        metrics().refused.labels(method, code, reason).inc()


def count_refused_notification(reason: str) -> None:
    if enabled():
        metrics().notifications_refused.labels(reason).inc()


def count_sentinel_run(examined: int, results: dict[str, int]) -> None:
    if not enabled():
        return
    m = metrics()
    m.sentinel_runs.inc()
    m.sentinel_examined.inc(examined)
    for result, count in results.items():
        if count:
            m.sentinel_resolved.labels(result).inc(count)


def _code_name(code: Any) -> str:
    """The name of a status code as ``context.code()`` gives it (a StatusCode, or its number)."""
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(code, int):
        return next((str(c.name) for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    return "UNKNOWN"


class ServerMetricsInterceptor(UnaryWrappingInterceptor):
    """Counts each call served by method and status code and observes its latency (the label
    children are looked up once per method, when its handler is wrapped)."""

    exempt = ("/grpc.health", "/grpc.reflection")

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        inner = handler.unary_unary
        m = metrics()
        handled = m.server_handled
        latency = m.server_seconds.labels(method)
        ok = handled.labels(method, "OK")

        async def measured(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            # What the call ends as when the handler sets no code: OK, or what gRPC answers for
            # an exception that escapes (UNKNOWN) or a call cancelled under it (CANCELLED).
            ending = "OK"
            try:
                return await inner(request, context)
            except asyncio.CancelledError:
                ending = "CANCELLED"
                raise
            except BaseException:
                ending = "UNKNOWN"
                raise
            finally:
                latency.observe(time.perf_counter() - started)
                code = context.code()
                name = _code_name(code) if code is not None else ending
                (ok if name == "OK" else handled.labels(method, name)).inc()

        return grpc.unary_unary_rpc_method_handler(
            measured,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class ScrapeSource(Protocol):
    """Metrics a service computes at scrape time into a registry of its own."""

    registry: CollectorRegistry

    async def refresh(self) -> None: ...


class MetricsServer:
    """``GET /metrics`` on ``listen`` (host:port; port 0 picks one: ``address`` after ``start``)."""

    def __init__(self, listen: str, sources: Sequence[ScrapeSource] = ()) -> None:
        self._host, self._port = parse_listen(listen)
        self._host = self._host.strip("[]")
        self._sources = list(sources)
        self._runner: web.AppRunner | None = None
        self.address = listen

    def add_source(self, source: ScrapeSource) -> None:
        self._sources.append(source)

    async def render(self) -> bytes:
        for source in self._sources:
            await source.refresh()
        registries = [metrics().registry, *(s.registry for s in self._sources)]
        return b"".join(generate_latest(r) for r in registries)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await self.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        bound = self._runner.addresses
        port = int(bound[0][1]) if bound else self._port
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.address = f"{host}:{port}"
        log.info("metrics_listening", url=f"http://{self.address}/metrics")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def start_metrics(listen: str, sources: Iterable[ScrapeSource] = ()) -> MetricsServer | None:
    """Start the ``/metrics`` server of ``--metrics-listen`` (None when it is empty)."""
    if not listen:
        return None
    server = MetricsServer(listen, list(sources))
    await server.start()
    return server
