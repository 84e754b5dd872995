"""The sentinel: every order ends, or lands in MANUAL_REVIEW with the reason.

One run visits every due order once: it claims a batch (one short transaction; see
``adapters/leases.py``), visits each, ``concurrency`` at a time, and claims again while batches come
back full (orders it visited are not claimed again by the same run). A visit takes the step for the
order's state
(``steps.py``, ``unpaid.py``), counts an undecided visit as an attempt, sends the order to
MANUAL_REVIEW after ``max_attempts`` attempts or ``max_age``, writes one ``sentinel_visit`` row on
the timeline and releases the lease. Due: last changed more than ``hold`` ago (unless the run
ignores the hold) and in a sentinel state (CREATED only past its expiry); MANUAL_REVIEW never.
Unpaid orders (CREATED, AWAITING_PAYMENT) past their expiry are due at once, whatever the hold, and
so are CREATED orders their request left ``void_delay`` ago: closing them (at WeChat first, then the
void) is safe at any time and releases their pre-recharges, which count against the card's balance
cap — a hold window of them would let strangers' unpaid orders block a card.
``close_left`` does the same for one order its request left, ``void_delay`` after it left.

Safe to cancel at any await: every step records before and after its remote call, so the next
visit resumes; a cancelled run's leases simply expire.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from rc_common.admission import detach
from rc_common.logs import get_logger
from rc_common.metrics import count_sentinel_run
from recharge_service.domain.order import SENTINEL_STATES, UNDECIDED, OrderStatus, RechargeOrder
from recharge_service.domain.review import review_reason
from recharge_service.service_layer import settle
from recharge_service.service_layer.actor import acting_as
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.holding import (
    RELEASED_AT,
    LeaseLost,
    OrderLease,
    acquire,
    holding,
    lease_of,
    release,
)
from recharge_service.service_layer.orders import flow, load_order
from recharge_service.service_layer.steps import Step, credit_step, refund_step
from recharge_service.service_layer.storage import Claimed
from recharge_service.service_layer.unpaid import awaiting_payment_step, created_step
from recharge_service.service_layer.visits import VisitLog
from recharge_service.settings import OnPending, SentinelSettings

log = get_logger("sentinel")
S = OrderStatus


@dataclass(frozen=True)
class SentinelPolicy:
    owner: str
    hold: timedelta
    lease: timedelta
    batch: int
    concurrency: int
    max_attempts: int
    max_age: timedelta
    on_pending: OnPending

    @classmethod
    def from_settings(cls, settings: SentinelSettings, owner: str) -> SentinelPolicy:
        """``owner`` names this process on its leases (defaults: ``settings.py``)."""
        return cls(
            owner=owner,
            hold=timedelta(seconds=settings.hold),
            lease=timedelta(seconds=settings.lease),
            batch=settings.batch,
            concurrency=settings.concurrency,
            max_attempts=settings.max_attempts,
            max_age=timedelta(seconds=settings.max_age),
            on_pending=settings.on_pending,
        )


@dataclass
class SentinelReport:
    examined: int = 0
    credited: int = 0
    refunded: int = 0
    closed: int = 0
    still_unknown: int = 0
    manual_review: int = 0
    refunding: int = 0
    skipped: int = 0
    duration_ms: int = 0

    def count(self, category: str) -> None:
        setattr(self, category, getattr(self, category) + 1)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Visit:
    category: str  # a SentinelReport counter
    order: RechargeOrder
    detail: str


def categorize(before: RechargeOrder, after: RechargeOrder, waiting: bool) -> str:
    if before.status not in SENTINEL_STATES:
        return "skipped"
    by_status = {
        S.CREDITED: "credited",
        S.REFUNDED: "refunded",
        S.CLOSED: "closed",
        S.REJECTED: "closed",
        S.MANUAL_REVIEW: "manual_review",
        S.REFUNDING: "refunding",
    }
    if after.status in by_status:
        return by_status[after.status]
    return "skipped" if waiting else "still_unknown"


async def advance(deps: Deps, order: RechargeOrder, on_pending: OnPending) -> Step:
    """The step for the order's state (nothing for states the sentinel leaves alone)."""
    if order.status in (S.PAID, S.CREDIT_UNKNOWN):
        return await credit_step(deps, order, on_pending)
    if order.status is S.REFUNDING:
        return await refund_step(deps, order)
    if order.status is S.AWAITING_PAYMENT:
        return await awaiting_payment_step(deps, order)
    if order.status is S.CREATED:
        return await created_step(deps, order)
    return Step(order, f"nothing to do: {order.status.name}", waiting=True)


async def visit(deps: Deps, policy: SentinelPolicy, order_no: str, visits: VisitLog) -> Visit:
    """Take one leased order one step forward; always ends by recording the visit, which releases
    the lease (unless cancelled: then the lease expires)."""
    before = await load_order(deps, order_no)
    try:
        step = await advance(deps, before, policy.on_pending)
        order = step.order
        undecided = not step.waiting and (order.status in UNDECIDED or order.attempts > before.attempts)
        if undecided and order.attempts == before.attempts:
            order = await settle.note_undecided(deps, order_no, step.detail)
        reason = review_reason(
            order, deps.clock(), max_attempts=policy.max_attempts, max_age=policy.max_age, undecided=undecided
        )
        if reason:
            order = await settle.send_to_manual_review(deps, order_no, reason)
        result = Visit(categorize(before, order, step.waiting), order, reason or step.detail)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await visits.record(before, before, "failed", f"{type(exc).__name__}: {exc}")
        raise
    error = order.last_error if order.attempts > before.attempts else ""
    await visits.record(
        before, order, result.category, result.detail, "" if error in result.detail else error
    )
    return result


async def run_sentinel(deps: Deps, policy: SentinelPolicy, *, ignore_hold: bool = False) -> SentinelReport:
    """Visit every due order once: claim ``batch`` at a time, again while batches come back full
    (orders visited in this run are not claimed again by it)."""
    detach()  # a run works for every due order, not for whoever asked for it: its own deadlines
    started = time.perf_counter()
    report = SentinelReport()
    async with deps.uow(readonly=True) as uow:  # visits are remembered on the leases' clock
        run_started = await uow.leases.now(deps.clock())
    with acting_as("sentinel"):
        while True:
            claimed_at = time.monotonic()
            claimed = await _claim(deps, policy, ignore_hold, run_started)
            report.examined += len(claimed)
            await _visit_batch(deps, policy, claimed, claimed_at, report)
            if len(claimed) < policy.batch:
                break
    report.duration_ms = round((time.perf_counter() - started) * 1000)
    results = report.as_dict()
    count_sentinel_run(results.pop("examined"), {k: v for k, v in results.items() if k != "duration_ms"})
    if claimed:
        log.info("sentinel_run", ignore_hold=ignore_hold, **report.as_dict())
    return report


async def _claim(
    deps: Deps, policy: SentinelPolicy, ignore_hold: bool, run_started: datetime
) -> list[Claimed]:
    now = deps.clock()
    async with deps.uow() as uow:  # the claim is one statement of its own (adapters/leases.py)
        return await uow.leases.claim_batch(
            policy.owner,
            now,
            now + policy.lease,
            statuses=sorted(SENTINEL_STATES),
            only_expired=[S.CREATED],
            changed_before=None if ignore_hold else now - policy.hold,
            visited_before=run_started,
            limit=policy.batch,
            at_once=[S.CREATED, S.AWAITING_PAYMENT],
            left=[S.CREATED],
            left_before=now - deps.void_delay,
        )


async def _visit_batch(
    deps: Deps, policy: SentinelPolicy, claimed: list[Claimed], claimed_at: float, report: SentinelReport
) -> None:
    gate = asyncio.Semaphore(policy.concurrency)
    visits = VisitLog(deps, policy.owner, every=policy.concurrency)

    async def one(order: Claimed) -> None:
        async with gate:
            lease = lease_of(order, policy.owner, order.token, policy.lease, claimed_at)
            report.count(await _visit_claimed(deps, policy, lease, visits))

    try:
        await asyncio.gather(*(one(order_no) for order_no in claimed))
    finally:
        await visits.flush()


async def _visit_claimed(deps: Deps, policy: SentinelPolicy, lease: OrderLease, visits: VisitLog) -> str:
    """Visit the order holding its lease (renewed meanwhile; a batch or a visit may be long)."""
    order_no = lease.order_no
    try:
        async with holding(deps, lease), flow(deps):
            lease.check()  # waited in the batch past the lease's end, and not renewed in time
            return (await visit(deps, policy, order_no, visits)).category
    except asyncio.CancelledError:
        raise
    except LeaseLost as exc:
        log.warning("sentinel_lease_lost", order_no=order_no, why=exc.message)
        return "skipped"
    except Exception:  # one order's failure must not stop the run; the next run visits it again
        log.exception("sentinel_visit_failed", order_no=order_no)
        return "still_unknown"


@dataclass(frozen=True)
class SentinelRun:
    """A run that ended, as this replica (``node``) remembers it."""

    finished_at: datetime
    report: SentinelReport
    node: str


class Sentinel:
    """One run at a time per process (the scheduled job and RunSentinel share the lock). The last
    ``RUNS_KEPT`` runs that ended are kept in memory with their reports (GetOpsHealth)."""

    RUNS_KEPT = 10

    def __init__(self, deps: Deps, policy: SentinelPolicy) -> None:
        self.deps = deps
        self.policy = policy
        self._lock = asyncio.Lock()
        self._runs: deque[SentinelRun] = deque(maxlen=self.RUNS_KEPT)

    @property
    def running(self) -> bool:
        return self._lock.locked()

    @property
    def latest_runs(self) -> list[SentinelRun]:
        """This replica's latest runs, newest first."""
        return list(self._runs)

    async def run(self, *, ignore_hold: bool = False) -> SentinelReport:
        async with self._lock:
            report = await run_sentinel(self.deps, self.policy, ignore_hold=ignore_hold)
            self._runs.appendleft(SentinelRun(self.deps.clock(), report, self.policy.owner))
            return report


async def close_left(deps: Deps, order_no: str) -> None:
    """A CREATED order its request left (caller gone, pre-recharge or prepay unknown or refused),
    unchanged for ``deps.void_delay`` (no retry resumed it): the sentinel's step for it now
    (``unpaid.created_step``) — close at WeChat first, then void the pre-recharge -> CLOSED; an order
    WeChat says is paid takes the paid path, never a void. Undecided, or someone else holds the
    order: left to the sentinel's runs (due at each run, whatever the hold)."""
    order = await load_order(deps, order_no)
    if order.status is not S.CREATED or deps.clock() - order.updated_at < deps.void_delay:
        return  # finished, or a retry resumed it (and leaves its own timer if it leaves it again)
    lease = await acquire(deps, order_no, f"{deps.node}/sentinel", deps.lease)
    if lease is None:
        return
    ended = order
    with acting_as("sentinel"):
        try:
            async with holding(deps, lease), flow(deps):
                order = await load_order(deps, order_no)
                step = await created_step(deps, order)
                ended = step.order
            log.info("left_order_visited", order_no=order_no, status=ended.status.name, detail=step.detail)
        except LeaseLost as exc:
            log.warning("left_order_lease_lost", order_no=order_no, why=exc.message)
        finally:
            if ended.status not in RELEASED_AT:
                await release(deps, lease)
