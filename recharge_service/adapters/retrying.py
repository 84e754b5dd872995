"""Bounded retries of one remote call, on *unknown* outcomes only, each attempt on the timeline.

A definitive answer (done or refused) ends the loop at once. An unknown one (timeout, UNAVAILABLE,
...) is retried after ``backoff * 2**(n-1)`` seconds (capped, with "equal jitter": ``rc_common.clock.
backoff``), with a fresh deadline per attempt.

While serving a request, an attempt's deadline is ``min(policy.deadline, the caller's remaining
time - policy.margin)`` (``rc_common.admission.budget``): a call whose answer would come after the
caller gave up is not started (nor put on the timeline) and ends *unknown* (``CALLER_GONE``) — the
outcome of an attempt never sent; no retry waits longer than the caller does.

Calls that change something elsewhere (``announce=True``: pre-recharge, confirm, void, prepay,
close, refund) are also recorded *before* each attempt (outcome ``sent``), so a process killed
while waiting for the answer still leaves the attempt on the order's timeline — and are made only
while this flow still holds the order's lease, when it holds one (``service_layer/holding.py``:
``LeaseLost`` otherwise, before anything is recorded or sent), with a deadline that ends before
the lease could run out.

Inside a flow (``service_layer/call_log.py``) the rows ride in the flow's own commits: the first
attempt's sent row is skipped when the flow announced it in the unit of work before the call, a
later attempt's sent row is written together with the answers still pending, and answers are left
pending for the flow's next commit. Outside a flow every row is its own short transaction.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from rc_common.admission import budget
from rc_common.clock import backoff, utc_now
from rc_common.logs import get_logger
from rc_common.outcomes import Done, Rejected, Unknown, call
from recharge_service.domain.timeline import REMOTE_CALL, TimelineEntry
from recharge_service.service_layer import call_log, holding
from recharge_service.service_layer.actor import actor
from recharge_service.service_layer.call_log import SENT, sent_entry
from recharge_service.service_layer.ports import Timeline
from recharge_service.settings import ConfirmSettings, RemoteSettings

T = TypeVar("T")
__all__ = ["CALLER_GONE", "SENT", "RetryPolicy", "with_retries"]
#: The ``Unknown`` code of an attempt not started because its caller will be gone before it ends.
CALLER_GONE = "CALLER_GONE"
log = get_logger("remote")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    deadline: float
    backoff: float
    backoff_max: float
    #: Seconds kept for ourselves out of a caller's remaining time (to record and answer).
    margin: float = 0.0

    @classmethod
    def from_settings(cls, settings: RemoteSettings | ConfirmSettings) -> RetryPolicy:
        """The remote-call policy, or the confirm-after-payment one (defaults: ``settings.py``)."""
        return cls(
            settings.attempts,
            settings.deadline,
            settings.backoff,
            settings.backoff_max,
            settings.deadline_margin,
        )

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return backoff(attempt, self.backoff, self.backoff_max, rng)


async def with_retries(
    method: str,
    order_no: str,
    attempt: Callable[[float], Awaitable[T]],
    policy: RetryPolicy,
    timeline: Timeline,
    *,
    announce: bool = False,
    describe: Callable[[T], str] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Done[T] | Rejected | Unknown:
    """Run ``attempt(deadline)`` until it ends definitively or the attempts are used up.
    ``describe`` says what a done answer was (e.g. ``VOIDED``), for the timeline row."""
    outcome: Done[T] | Rejected | Unknown = Unknown("UNKNOWN", "not attempted", 0.0)
    flow = call_log.current()
    made = 0
    for number in range(1, policy.attempts + 1):
        deadline = budget(policy.deadline, policy.margin)
        if deadline <= 0:  # the caller will be gone before an answer: do not start
            if number == 1:
                return _not_started(method, order_no, policy, flow, announce=announce)
            break
        if announce:  # a call that changes something elsewhere: only while the order is still ours
            holding.check(order_no)
            lease_left = holding.time_left(order_no)
            if lease_left is not None:  # and over before the lease could be another's
                deadline = min(deadline, lease_left)
        if announce and not (number == 1 and flow is not None and flow.take_announced(method)):
            sent = sent_entry(
                order_no,
                method,
                utc_now(),
                actor(),
                f"attempt {number}/{policy.attempts}: sent, answer pending",
            )
            pending = flow.take_pending() if flow is not None else []
            try:
                await timeline.record(*pending, sent, required=True)
            except Exception as exc:  # not on record -> not sent (I6); the outcome stays open
                if flow is not None:
                    flow.put_back(pending)
                log.warning("remote_attempt_not_recorded", order_no=order_no, method=method, error=str(exc))
                return Unknown("UNAVAILABLE", "the attempt could not be put on the timeline; not sent", 0.0)
        outcome = await call(attempt(deadline), method=method)
        made = number
        error, said = "", ""
        if isinstance(outcome, Done) and describe is not None:
            said = f": {describe(outcome.value)}"
        if isinstance(outcome, Rejected):
            error = f"{outcome.code} {outcome.reason}: {outcome.detail}".strip()
        elif isinstance(outcome, Unknown):
            error = f"{outcome.code}: {outcome.detail}".strip()
        answer = TimelineEntry(
            order_no,
            utc_now(),
            REMOTE_CALL,
            method=method,
            outcome=outcome.outcome,
            latency_ms=round(outcome.latency_ms),
            error=error,
            actor=actor(),
            detail=f"attempt {number}/{policy.attempts}{said}",
        )
        if flow is not None:
            flow.pending.append(answer)  # written with the flow's next commit
        else:
            await timeline.record(answer)
        # Every attempt is on the order's timeline; the log adds the ones that went wrong (an answer
        # logged at info per call costs the hot path more than the call's own bookkeeping).
        (log.debug if isinstance(outcome, Done) else log.info)(
            "remote_attempt",
            order_no=order_no,
            method=method,
            attempt=number,
            outcome=outcome.outcome,
            latency_ms=round(outcome.latency_ms, 1),
            error=error,
        )
        if not isinstance(outcome, Unknown):
            return outcome
        if number < policy.attempts:
            pause = policy.delay(number)
            if budget(pause + policy.deadline, policy.margin) <= pause:
                break  # the caller would be gone before another attempt could answer
            await sleep(pause)
    assert isinstance(outcome, Unknown)
    return Unknown(outcome.code, f"{outcome.detail} (after {made} attempts)", outcome.latency_ms)


def _not_started(
    method: str, order_no: str, policy: RetryPolicy, flow: call_log.CallLog | None, *, announce: bool
) -> Unknown:
    """The outcome of a call not started because its caller gives up first; a ``sent`` row the
    flow announced for it gets its answer (not sent) with the flow's next commit."""
    gone = Unknown(CALLER_GONE, "the caller gave up before this call could end; not sent", 0.0)
    if announce and flow is not None and flow.take_announced(method):
        flow.pending.append(
            TimelineEntry(
                order_no,
                utc_now(),
                REMOTE_CALL,
                method=method,
                outcome=gone.outcome,
                latency_ms=0,
                error=f"{gone.code}: {gone.detail}",
                actor=actor(),
                detail=f"attempt 1/{policy.attempts}: not sent",
            )
        )
    return gone
