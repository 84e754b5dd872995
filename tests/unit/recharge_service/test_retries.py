"""Bounded retries: unknown outcomes only, doubling backoff with jitter, every attempt recorded."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest

from recharge_service.adapters.retrying import RetryPolicy, with_retries
from recharge_service.adapters.timeline import MemoryTimeline
from recharge_service.service_layer import holding
from recharge_service.settings import RemoteSettings


class Failure(grpc.aio.AioRpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=code.name)


def remote(**changes: object) -> RetryPolicy:
    """The remote-call policy built from its settings, with ``changes`` to them."""
    return RetryPolicy.from_settings(RemoteSettings(**changes))  # type: ignore[arg-type]


def script(*steps: object) -> tuple[list[float], object]:
    deadlines: list[float] = []
    queue = list(steps)

    async def attempt(deadline: float) -> object:
        deadlines.append(deadline)
        step = queue.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    return deadlines, attempt


async def no_sleep(_seconds: float) -> None:
    return None


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    ],
)
async def test_unknown_outcomes_are_retried_until_done(code: grpc.StatusCode) -> None:
    timeline = MemoryTimeline()
    deadlines, attempt = script(Failure(code), Failure(code), "ok")
    outcome = await with_retries(
        "/x/Y", "R1", attempt, remote(attempts=3, deadline=1.5), timeline, sleep=no_sleep
    )  # type: ignore[arg-type]
    assert outcome.outcome == "done"
    assert deadlines == [1.5, 1.5, 1.5]
    assert [(e.method, e.outcome, e.detail) for e in timeline.entries] == [
        ("/x/Y", "unknown", "attempt 1/3"),
        ("/x/Y", "unknown", "attempt 2/3"),
        ("/x/Y", "done", "attempt 3/3"),
    ]


@pytest.mark.parametrize("code", [grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND])
async def test_a_definitive_answer_stops_at_once(code: grpc.StatusCode) -> None:
    timeline = MemoryTimeline()
    deadlines, attempt = script(Failure(code), "never")
    outcome = await with_retries("/x/Y", "R1", attempt, remote(attempts=3), timeline, sleep=no_sleep)  # type: ignore[arg-type]
    assert outcome.outcome == "refused"
    assert len(deadlines) == 1 and len(timeline.entries) == 1


async def test_unknown_after_every_attempt_says_how_many_and_sleeps_between() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    _deadlines, attempt = script(*(Failure(grpc.StatusCode.UNAVAILABLE) for _ in range(3)))
    outcome = await with_retries(
        "/x/Y",
        "R1",
        attempt,
        RetryPolicy(attempts=3, deadline=1.0, backoff=0.2, backoff_max=5.0),
        MemoryTimeline(),
        sleep=sleep,
    )  # type: ignore[arg-type]
    assert outcome.outcome == "unknown"
    assert "after 3 attempts" in outcome.detail  # type: ignore[union-attr]
    assert len(slept) == 2
    assert 0.1 <= slept[0] <= 0.2 and 0.2 <= slept[1] <= 0.4


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = remote(attempts=10, backoff=0.2, backoff_max=1.0)
    rng = random.Random(7)
    delays = [policy.delay(n, rng) for n in range(1, 8)]
    for number, delay in enumerate(delays, start=1):
        base = min(0.2 * 2 ** (number - 1), 1.0)
        assert base / 2 <= delay <= base
    assert len({round(d, 6) for d in delays}) > 1


async def test_a_call_that_changes_something_is_on_record_before_each_attempt_is_sent() -> None:
    timeline = MemoryTimeline()
    seen_before: list[int] = []
    _deadlines, scripted = script(Failure(grpc.StatusCode.UNAVAILABLE), "VOIDED")

    async def attempt(deadline: float) -> object:
        seen_before.append(len(timeline.entries))  # what was recorded when the call went out
        return await scripted(deadline)  # type: ignore[operator]

    outcome = await with_retries(
        "/x/Void", "R1", attempt, remote(attempts=3), timeline, announce=True, describe=str, sleep=no_sleep
    )
    assert outcome.outcome == "done"
    assert seen_before == [1, 3]
    assert [(e.outcome, e.detail) for e in timeline.entries] == [
        ("sent", "attempt 1/3: sent, answer pending"),
        ("unknown", "attempt 1/3"),
        ("sent", "attempt 2/3: sent, answer pending"),
        ("done", "attempt 2/3: VOIDED"),
    ]


class BrokenTimeline(MemoryTimeline):
    """The database refuses every write."""

    async def record(self, *entries: object, required: bool = False) -> None:
        if required:
            raise OSError("disk I/O error")


async def test_a_call_whose_sent_row_cannot_be_recorded_is_not_sent_and_stays_unknown() -> None:
    deadlines, attempt = script("ok")
    outcome = await with_retries(
        "/x/Y",
        "R1",
        attempt,
        remote(attempts=3, deadline=1.0),
        BrokenTimeline(),
        announce=True,
        sleep=no_sleep,  # type: ignore[arg-type]
    )
    assert outcome.outcome == "unknown"  # never a refusal: nothing was decided
    assert deadlines == []  # and nothing left without being on the order's timeline (I6)


async def test_a_call_under_an_order_s_lease_ends_before_the_lease_could_run_out() -> None:
    """Late renewals (a starved process) must not leave a call in flight when the order can be
    another replica's: each attempt's deadline is capped by what is left of the lease."""
    now = [100.0]
    lease = holding.OrderLease("R1", "a/credit", 1, timedelta(seconds=5), 100.4, monotonic=lambda: now[0])
    deadlines, attempt = script(Failure(grpc.StatusCode.UNAVAILABLE), "CONFIRMED")

    async def time_passes(seconds: float) -> None:
        now[0] += 0.1 + seconds

    async with _holding_only(lease):
        outcome = await with_retries(
            "/x/Confirm", "R1", attempt, remote(attempts=3, deadline=5.0), MemoryTimeline(),
            announce=True, sleep=time_passes,
        )  # type: ignore[arg-type]
    assert outcome.outcome == "done"
    assert deadlines[0] == pytest.approx(0.4)  # not the policy's 5 s
    assert 0 < deadlines[1] < 0.4
    # A call that changes nothing is not under the lease's bound.
    deadlines, attempt = script("ok")
    async with _holding_only(lease):
        await with_retries("/x/Get", "R1", attempt, remote(deadline=5.0), MemoryTimeline())  # type: ignore[arg-type]
    assert deadlines == [5.0]


@contextlib.asynccontextmanager
async def _holding_only(lease: holding.OrderLease) -> AsyncIterator[None]:
    """The flow holds ``lease`` (as ``holding.holding`` does), without its renewer."""
    with holding.holding_for_insert(lease):
        yield
