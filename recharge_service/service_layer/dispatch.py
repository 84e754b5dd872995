"""Delivering follow-ups from the outbox, at least once, each attempt on the timeline.

``dispatch_once`` claims due rows with a lease (one statement; two processes never deliver one row
at the same time), delivers them concurrently outside any transaction, then records all the
results in one transaction: delivered; no business callback target configured -> skipped; failed
-> retried after a doubling backoff; after ``max_attempts`` -> dead. Receivers dedupe on
``event_id`` (the customer notice sends it as WeChat's message idempotency key), so a repeat
after a lost answer is seen once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from rc_common.clock import backoff
from rc_common.logs import get_logger
from rc_common.outcomes import Done, Rejected, Unknown
from recharge_service.domain.followups import BUSINESS_CALLBACK, CUSTOMER_NOTICE
from recharge_service.domain.order import Channel
from recharge_service.domain.timeline import OUTBOX_DELIVERY, TimelineEntry
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.merchants import merchant_of
from recharge_service.service_layer.orders import load_order
from recharge_service.service_layer.ports import CallbackSender, NoticeSender
from recharge_service.service_layer.storage import OutboxRow, Settled
from recharge_service.settings import OutboxSettings

log = get_logger("outbox")
T = TypeVar("T")


@dataclass(frozen=True)
class OutboxPolicy:
    owner: str
    lease: timedelta
    batch: int
    backoff: float
    backoff_max: float
    max_attempts: int

    @classmethod
    def from_settings(cls, settings: OutboxSettings, owner: str) -> OutboxPolicy:
        """``owner`` names this process on its leases (defaults: ``settings.py``)."""
        return cls(
            owner=owner,
            lease=timedelta(seconds=settings.lease),
            batch=settings.batch,
            backoff=settings.backoff,
            backoff_max=settings.backoff_max,
            max_attempts=settings.max_attempts,
        )

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=backoff(attempts, self.backoff, self.backoff_max))


@dataclass(frozen=True)
class Result:
    status: str  # delivered | skipped | failed
    outcome: str
    latency_ms: float = 0.0
    error: str = ""
    detail: str = ""


async def dispatch_once(
    deps: Deps, notices: NoticeSender, callbacks: CallbackSender, policy: OutboxPolicy
) -> int:
    """Deliver the follow-ups due now; returns how many rows were attempted."""
    now = deps.clock()
    async with deps.uow() as uow:
        rows = await uow.outbox.claim(policy.owner, now, now + policy.lease, policy.batch)
    if not rows:
        return 0
    results = await asyncio.gather(*(_deliver(deps, notices, callbacks, row) for row in rows))
    settled = [_settle(deps, policy, row, result) for row, result in zip(rows, results, strict=True)]
    async with deps.uow() as uow:
        recorded = set(await uow.outbox.finish(policy.owner, settled))
    for row, item in zip(rows, settled, strict=True):
        (log.debug if item.status in ("delivered", "skipped") else log.info)(
            "outbox_attempt",
            order_no=row.order_no,
            topic=row.topic,
            event_id=row.event_id,
            status=item.status,
            attempts=item.attempts,
            error=item.last_error,
            recorded=row.id in recorded,
        )
    return len(rows)


async def _deliver(deps: Deps, notices: NoticeSender, callbacks: CallbackSender, row: OutboxRow) -> Result:
    payload = row.payload
    if row.topic == CUSTOMER_NOTICE:
        data = {str(k): str(v) for k, v in dict(payload.get("data", {})).items()}
        outcome = await notices.send(
            str(payload.get("openid", "")), str(payload.get("template_id", "")), data, row.event_id
        )
        detail = f"template {payload.get('template_id')} to {payload.get('openid')}"
        return _result(outcome, detail)
    if row.topic == BUSINESS_CALLBACK:
        channel = str(payload.get("channel", ""))
        merchant_id, version = str(payload.get("merchant_id", "")), int(payload.get("merchant_version", 0))
        merchant = await deps.merchants.version(merchant_id, version)  # versions are cached for good
        if merchant is None:
            order = await load_order(deps, row.order_no)
            merchant = await merchant_of(deps.merchants, order)
        target = merchant.callbacks.get(Channel[channel], "") if channel in Channel.__members__ else ""
        if not target:
            why = f"merchant {merchant.merchant_id} v{merchant.version} has no callback target for {channel}"
            return Result("skipped", "skipped", detail=why)
        order = await load_order(deps, row.order_no)
        return _result(await callbacks.send(target, row.event_id, order), f"OnRechargeFinished at {target}")
    return Result("failed", "refused", error=f"unknown topic {row.topic!r}")


def _result(outcome: Done[T] | Rejected | Unknown, detail: str) -> Result:
    if isinstance(outcome, Done):
        return Result("delivered", "done", outcome.latency_ms, detail=detail)
    if isinstance(outcome, Rejected):
        error = f"{outcome.code} {outcome.reason}: {outcome.detail}".strip()
    else:
        error = f"{outcome.code}: {outcome.detail}".strip()
    return Result("failed", outcome.outcome, outcome.latency_ms, error, detail)


def _settle(deps: Deps, policy: OutboxPolicy, row: OutboxRow, result: Result) -> Settled:
    now = deps.clock()
    attempts = row.attempts + (0 if result.status == "skipped" else 1)
    status, next_at, outcome = result.status, now, result.outcome
    if result.status == "failed":
        status, next_at = "pending", now + policy.delay(attempts)
        if attempts >= policy.max_attempts:
            status, outcome = "dead", f"{result.outcome}; dead after {attempts} attempts"
    entry = TimelineEntry(
        row.order_no,
        now,
        OUTBOX_DELIVERY,
        method=row.topic,
        outcome=outcome,
        latency_ms=round(result.latency_ms),
        error=result.error,
        actor="outbox",
        detail=f"{row.event_id}: {result.detail}".rstrip(": "),
    )
    return Settled(row.id, status, attempts, next_at, result.error, entry)
