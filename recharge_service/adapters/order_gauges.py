"""The recharge center's gauges read from its database, for ``/metrics`` (``rc_common.metrics``).

One statement per refresh — orders grouped by status with their oldest ``created_at`` and
``updated_at``, and the pending outbox rows with their oldest ``created_at`` (``UNION ALL``) —
and at most one refresh per ``cache`` seconds, however often Prometheus (or several of them)
scrape: a scrape never loads the database. A refresh that fails keeps the last values and is
logged; the next scrape after the period tries again.

- ``rc_orders{status}``: orders in each status (every status, 0 when none).
- ``rc_oldest_unfinished_order_age_seconds``: since the creation of the oldest order that is
  neither final nor in MANUAL_REVIEW (0 when none) — the sentinel should finish every order within
  the hold window and two of its periods.
- ``rc_oldest_manual_review_age_seconds``: since the least recently changed order in MANUAL_REVIEW
  (about when it entered review; 0 when the queue is empty).
- ``rc_outbox_backlog`` and ``rc_outbox_oldest_age_seconds``: follow-ups still pending, and the age
  of the oldest.

``SqlOrderFigures`` is that query and its arithmetic, uncached: the gauges refresh from it, and
``RechargeOps.GetOpsHealth`` reads the same figures from it (``service_layer/ops_health.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import Connection, func, literal, select, union_all

from rc_common.db import Database
from rc_common.logs import get_logger
from recharge_service.adapters.orm import outbox, recharge_orders
from recharge_service.adapters.repository import read
from recharge_service.domain.order import FINAL, OrderStatus
from recharge_service.service_layer.ops_health import OrderFigures

log = get_logger("metrics")

_ORDERS, _OUTBOX = "orders", "outbox"


@dataclass(frozen=True)
class _Row:
    table: str
    status: str
    count: int
    oldest_created: datetime | None
    oldest_updated: datetime | None


def _query() -> object:
    orders = select(
        literal(_ORDERS).label("t"),
        recharge_orders.c.status,
        func.count(),
        func.min(recharge_orders.c.created_at),
        func.min(recharge_orders.c.updated_at),
    ).group_by(recharge_orders.c.status)
    pending = select(
        literal(_OUTBOX).label("t"),
        literal("pending").label("status"),
        func.count(),
        func.min(outbox.c.created_at),
        func.min(outbox.c.created_at),
    ).where(outbox.c.status == "pending")
    return union_all(orders, pending)


def figures_of(rows: list[_Row], now: datetime) -> OrderFigures:
    """The figures the query's rows say, ``now``."""
    counts = {status.name: 0 for status in OrderStatus}
    unfinished: list[datetime] = []
    review: list[datetime] = []
    backlog, oldest_pending = 0, None
    for row in rows:
        if row.table == _OUTBOX:
            backlog, oldest_pending = row.count, row.oldest_created
            continue
        counts[row.status] = row.count
        if row.status == OrderStatus.MANUAL_REVIEW.name:
            review += [row.oldest_updated] if row.oldest_updated else []
        elif row.status not in {s.name for s in FINAL} and row.oldest_created:
            unfinished.append(row.oldest_created)
    return OrderFigures(
        orders_by_status=counts,
        oldest_unfinished_age_s=_age(now, min(unfinished, default=None)),
        oldest_review_age_s=_age(now, min(review, default=None)),
        outbox_backlog=backlog,
        outbox_oldest_age_s=_age(now, oldest_pending),
    )


class SqlOrderFigures:
    """The orders' and the outbox's figures, read now (one statement; ``StorageError`` when the
    database cannot be read)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._statement = _query()

    async def read(self, now: datetime) -> OrderFigures:
        return figures_of(await read(self._db, self._rows), now)

    def _rows(self, conn: Connection) -> list[_Row]:
        return [_Row(*row) for row in conn.execute(self._statement)]  # type: ignore[call-overload]


class OrderGauges:
    """A ``rc_common.metrics.ScrapeSource``: refreshed before a scrape is rendered."""

    def __init__(self, db: Database, cache: float, clock: Callable[[], datetime]) -> None:
        self._figures = SqlOrderFigures(db)
        self._cache = cache
        self._clock = clock
        self._fresh_until = 0.0
        self._lock = asyncio.Lock()
        self.registry = CollectorRegistry()
        r = self.registry
        self.orders = Gauge("rc_orders", "orders by status", ["status"], registry=r)
        self.oldest_unfinished = Gauge(
            "rc_oldest_unfinished_order_age_seconds",
            "seconds since the oldest order neither final nor in MANUAL_REVIEW was created",
            registry=r,
        )
        self.oldest_review = Gauge(
            "rc_oldest_manual_review_age_seconds",
            "seconds since the least recently changed order in MANUAL_REVIEW changed",
            registry=r,
        )
        self.outbox_backlog = Gauge("rc_outbox_backlog", "follow-ups waiting to be delivered", registry=r)
        self.outbox_oldest = Gauge(
            "rc_outbox_oldest_age_seconds",
            "seconds since the oldest pending follow-up was written",
            registry=r,
        )

    async def refresh(self) -> None:
        """Read the database unless the values are younger than the cache period."""
        async with self._lock:  # concurrent scrapes wait for one read, not one read each
            if time.monotonic() < self._fresh_until:
                return
            try:
                figures = await self._figures.read(self._clock())
            except Exception:  # a scrape shows the last values; the database's trouble is logged
                log.exception("metrics_refresh_failed")
            else:
                self._apply(figures)
            self._fresh_until = time.monotonic() + self._cache

    def _apply(self, figures: OrderFigures) -> None:
        for status, count in figures.orders_by_status.items():
            self.orders.labels(status).set(count)
        self.oldest_unfinished.set(figures.oldest_unfinished_age_s)
        self.oldest_review.set(figures.oldest_review_age_s)
        self.outbox_backlog.set(figures.outbox_backlog)
        self.outbox_oldest.set(figures.outbox_oldest_age_s)


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0
