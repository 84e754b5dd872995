"""Measuring a load: between two idle points, the CPU each process spent and the database work
each service did, per completed top-up; the closed-loop levels one after another.

A service run as several processes (recharge-center replicas, ``CpuMeter.groups``) is charged the
sum of its processes' CPU and counters, each process's own figures kept beside the sum; the database
server's CPU (PostgreSQL) and the load generator's are charged too, under their own names.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from scripts.bench.db import DbCounters, Snapshot, per_topup, template_messages
from scripts.bench.load import OPENID, LoadResult, TopUps, closed_loop
from scripts.bench.procs import MACHINE, OTHERS, CpuMeter, other_work, wait_idle
from scripts.chaos.rpc import Stubs


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


class Probe:
    """Reads what the services did between two points: database counters and customer notices."""

    def __init__(self, counters: DbCounters, stubs: Stubs, quick: bool) -> None:
        self._counters = counters
        self._stubs = stubs
        self._quick = quick
        #: Counter growth per second with no load (periodic work), per process and group.
        self.idle: dict[str, dict[str, float]] = {}

    async def measure_idle(self, pids: dict[str, int]) -> None:
        await wait_idle(pids, samples=2 if self._quick else 4)
        self.idle = await self._counters.idle_rates(1.5 if self._quick else 4.0)
        say(f"database counters per second at idle: {self.idle}")

    async def settle(self) -> float:
        """Seconds until the services' writes are back at their idle rate (see DbCounters.settle)."""
        window, timeout = (1.0, 5.0) if self._quick else (2.0, 60.0)
        return await self._counters.settle(self.idle, window, timeout)

    async def snapshot(self) -> Snapshot:
        messages = await template_messages(self._stubs.wechat_channel, OPENID)
        return Snapshot(await self._counters.read(), messages)


async def measured(
    run: Callable[[], Awaitable[LoadResult]], meter: CpuMeter, probe: Probe | None, idle_samples: int
) -> LoadResult:
    """``run`` between two idle points: CPU and database counters per completed top-up.

    Deferred work (follow-ups, notifications) is finished by the second idle point — the
    processes' CPU is low and their write units grow no faster than at idle — so it is charged to
    the load that caused it (``drain_s`` is how long that took)."""
    await wait_idle(meter.pids, samples=idle_samples)
    snap_before = await probe.snapshot() if probe else None
    before, since = meter.read(), time.monotonic()
    result = await run()
    result.drain_s = await wait_idle(meter.pids, samples=idle_samples)
    if probe:
        result.drain_s += await probe.settle()
    after, window = meter.read(), time.monotonic() - since
    if probe and snap_before:
        result.db = per_topup(snap_before, await probe.snapshot(), result.completed, meter.groups)
    used = {name: after[name] - before[name] for name in sorted(after) if name in before}
    busy_s = result.elapsed_s + result.drain_s
    result.cpu_ms_per_topup = {
        name: round(seconds * 1000 / max(1, result.completed), 2)
        for name, seconds in used.items()
        if name != MACHINE  # read only for the other work beside ours
    }
    result.cpu_busy = {name: round(seconds / busy_s, 2) for name, seconds in used.items() if name != MACHINE}
    others = other_work(used, meter.groups, window)
    if others is not None:
        # Over the whole window read (the idle points included), not only the busy time.
        result.cpu_busy[OTHERS] = round(others, 2)
    return result


def _db_brief(db: dict[str, dict[str, Any]]) -> str:
    return ", ".join(
        f"{name} {row['units_per_topup']}/{row['commits_per_topup']}/{row['statements_per_topup']}"
        + (
            " (" + ", ".join(f"{r} {v['units_per_topup']}" for r, v in row["replicas"].items()) + ")"
            if row.get("replicas")
            else ""
        )
        for name, row in db.items()
    )


async def run_levels(
    topups: TopUps, args: argparse.Namespace, label: str, meter: CpuMeter, probe: Probe | None = None
) -> list[LoadResult]:
    results = []
    for level in args.level_list:

        def load(level: int = level) -> Awaitable[LoadResult]:
            duration = 0 if args.orders else args.duration
            return closed_loop(topups, level, duration_s=duration, orders=args.orders, label=label)

        result = await measured(load, meter, probe, args.idle_samples)
        say(
            f"{label} concurrency {level}: {result.tps:.1f} top-ups/s, "
            f"sustained {result.summary()['sustained_topups_per_s']}/s (drain {result.drain_s:.1f} s), "
            f"create p99 {result.summary()['create_ms']['p99']} ms, failed {result.failed}, "
            f"CPU ms per top-up {result.cpu_ms_per_topup}"
            + (f", units/commits/statements per top-up: {_db_brief(result.db)}" if result.db else "")
        )
        results.append(result)
    return results
