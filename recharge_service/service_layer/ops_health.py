"""GetOpsHealth: the figures of the console's health page, the same the metrics export.

- the systems this replica depends on: the card system and WeChat Pay (their gRPC health check,
  with a short deadline) and the database (a trivial query): SERVING, NOT_SERVING, or UNKNOWN (no
  answer in time), each with its latency;
- this replica's latest sentinel runs (``Sentinel.latest_runs``);
- the orders' figures of ``/metrics`` (orders by status, oldest unfinished order, oldest in
  MANUAL_REVIEW, outbox backlog and its oldest row: ``adapters/order_gauges.py``, one query), the
  hold window, and how many approvals are pending.

The checks run side by side; a system that does not answer is UNKNOWN in the answer, never a
failure of the call. When the database cannot be read, the figures are left out (``figures`` None)
and the database's own line says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from recharge_service.domain.approval import ApprovalStatus
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.sentinel import Sentinel, SentinelRun
from recharge_service.service_layer.storage import StorageError

SERVING, NOT_SERVING, UNKNOWN = "SERVING", "NOT_SERVING", "UNKNOWN"


@dataclass(frozen=True)
class SystemHealth:
    name: str
    status: str
    latency_ms: int
    detail: str = ""


class HealthProbe(Protocol):
    async def check(self) -> SystemHealth:
        """The system's health now (never raises: no answer in time is UNKNOWN)."""
        ...


@dataclass(frozen=True)
class OrderFigures:
    """What ``/metrics`` exports of the orders and the outbox (ages in seconds, 0 when none)."""

    orders_by_status: dict[str, int]
    oldest_unfinished_age_s: float
    oldest_review_age_s: float
    outbox_backlog: int
    outbox_oldest_age_s: float


class Figures(Protocol):
    async def read(self, now: datetime) -> OrderFigures:
        """The figures now; ``StorageError`` when the database cannot be read."""
        ...


@dataclass(frozen=True)
class HealthSources:
    """Where the health comes from (built by the composition root)."""

    probes: Sequence[HealthProbe]
    figures: Figures


@dataclass(frozen=True)
class OpsHealth:
    node: str
    systems: list[SystemHealth]
    sentinel_runs: list[SentinelRun]
    figures: OrderFigures | None
    hold: timedelta
    pending_approvals: int


async def ops_health(deps: Deps, sources: HealthSources, sentinel: Sentinel) -> OpsHealth:
    systems = await asyncio.gather(*(probe.check() for probe in sources.probes))
    figures: OrderFigures | None = None
    pending = 0
    try:
        figures = await sources.figures.read(deps.clock())
        async with deps.uow(readonly=True) as uow:
            pending = await uow.approvals.count(ApprovalStatus.PENDING)
    except StorageError:
        pass  # the database's line says it did not answer
    return OpsHealth(
        deps.node, list(systems), sentinel.latest_runs, figures, sentinel.policy.hold, pending
    )
