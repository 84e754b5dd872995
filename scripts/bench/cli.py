"""How fast is a top-up, end to end, on this machine — against what it could be at all — and what
it costs each service's database.

The top-ups alternate between the bench's two merchants (scripts/merchants.py BENCH_MERCHANTS):
one paid directly (its own mchid and keys), one under the provider (partner mode, sp_mchid +
sub_mchid), so both WeChat signing paths are measured; every request names its merchant.

1. The bare chain (scripts/bench/bare.py: do-nothing grpc.aio servers in three processes making
   the same seven hops a top-up makes, with the same merchant fields) at each concurrency level.
2. The real services (started here with their default settings, on SQLite or with --db postgresql
   on a throwaway PostgreSQL; the two merchants and their cards opened first) at the same levels:
   top-ups per second (create -> pay -> notify -> CREDITED, seen by polling GetRechargeOrder),
   p50/p95/p99 of CreateRechargeOrder and of pay->credited; per service CPU ms, write
   transactions (units), commits and SQL statements per top-up (rc_common/db.py's counters,
   written to RC_DB_STATS_FILE; see scripts/bench/db.py).
3. Open-loop arrivals at half the peak rate: CreateRechargeOrder's p99 there.
4. The sentinel resolving a backlog of N orders stuck in CREDIT_UNKNOWN (skipped with a note while
   RechargeOps.RunSentinel is UNIMPLEMENTED).
5. Peak RSS of each service process (VmHWM).
Prints a table and the goals of issue 10 (met / NOT met / not measured), writes bench.json and
bench.png (throughput and p99 against concurrency) to --out. Timings are never asserted anywhere.

  .venv/bin/python -m scripts.bench                     # `make bench` (backlog 10000)
  .venv/bin/python -m scripts.bench --levels 1,8,32 --duration 5 --backlog 2000
  .venv/bin/python -m scripts.bench --db postgresql     # the same on PostgreSQL
  .venv/bin/python -m scripts.bench --quick             # seconds; for the test
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from protos.card.v1 import card_pb2
from scripts.bench.db import (
    CALLS_DIVIDED_BY,
    Databases,
    DbCounters,
    Snapshot,
    per_topup,
    stats_env,
    template_messages,
)
from scripts.bench.load import OPENID, BenchCard, LoadResult, TopUps, closed_loop, open_loop
from scripts.bench.procs import BareChain, RssSampler, cpu_seconds, wait_idle
from scripts.bench.report import evaluate_goals, plot, print_table
from scripts.bench.sentinel import build_backlog, resolve_backlog, sentinel_available
from scripts.chaos.rpc import Stubs
from scripts.chaos.services import Services, flag_args
from scripts.merchants import BENCH_MERCHANTS, direct_merchants_flag, open_merchants
from scripts.stack import ROOT, build_stack, start_stack

AMOUNT_FEN = 20_000  # ¥200: gets the ¥20 bonus tier, so the bonus path is measured too


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--levels",
        default="1,8,32,64,128",
        help="concurrency levels (customers in a closed loop), comma separated (default %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds per level and for half of peak (default %(default)s)",
    )
    parser.add_argument(
        "--orders",
        type=int,
        default=0,
        help="top-ups per level instead of --duration (default: use --duration)",
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=10_000,
        help="CREDIT_UNKNOWN orders the sentinel resolves; the goal is 10000 in <= 30 s (default "
        "%(default)s; 0 = skip)",
    )
    parser.add_argument(
        "--cards",
        type=int,
        default=500,
        help="cards opened (alternately for each of the bench's merchants) and spread over by the "
        "top-ups (default %(default)s)",
    )
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the services' databases: SQLite files in a temp dir (default), or one throwaway "
        "PostgreSQL server (tests/postgres.py, fsync off) with a database per service",
    )
    parser.add_argument("--log-level", default="info", help="the services' --log-level (default %(default)s)")
    parser.add_argument(
        "--out",
        default=str(ROOT / "bench-results"),
        help="directory for bench.json and bench.png (default %(default)s)",
    )
    parser.add_argument(
        "--profile",
        choices=("card", "recharge", "wechat"),
        default="",
        help="run this service under cProfile; top functions to OUT/profile-SERVICE.txt",
    )
    parser.add_argument(
        "--skip-bare",
        action="store_true",
        help="do not run the bare chain (no ratio, that goal not measured)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny run for the test: levels 1,4, 1 s each, backlog <= 10, cards <= 10",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.levels, args.duration, args.orders = "1,4", 1.0, 0
        args.backlog, args.cards = min(args.backlog, 10), min(args.cards, 10)
    args.idle_samples = 2 if args.quick else 4
    args.level_list = [int(x) for x in args.levels.split(",") if x.strip()]
    if not args.level_list or min(args.level_list) < 1:
        parser.error("--levels wants positive integers, e.g. 1,8,32")
    return args


class Probe:
    """Reads what the services did between two points: database counters and customer notices."""

    def __init__(self, counters: DbCounters, stubs: Stubs, quick: bool) -> None:
        self._counters = counters
        self._stubs = stubs
        self._quick = quick
        #: Counter growth per second with no load (periodic work), per service.
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
    run: Callable[[], Awaitable[LoadResult]], pids: dict[str, int], probe: Probe | None, idle_samples: int
) -> LoadResult:
    """``run`` between two idle points: CPU and database counters per completed top-up.

    Deferred work (follow-ups, notifications) is finished by the second idle point — the
    processes' CPU is low and their write units grow no faster than at idle — so it is charged to
    the load that caused it (``drain_s`` is how long that took)."""
    await wait_idle(pids, samples=idle_samples)
    snap_before = await probe.snapshot() if probe else None
    before = cpu_seconds(pids)
    result = await run()
    result.drain_s = await wait_idle(pids, samples=idle_samples)
    if probe:
        result.drain_s += await probe.settle()
    after = cpu_seconds(pids)
    if probe and snap_before:
        result.db = per_topup(snap_before, await probe.snapshot(), result.completed)
    result.cpu_ms_per_topup = {
        name: round((after[name] - before[name]) * 1000 / max(1, result.completed), 2)
        for name in sorted(after)
        if name in before
    }
    result.cpu_busy = {
        name: round((after[name] - before[name]) / (result.elapsed_s + result.drain_s), 2)
        for name in sorted(after)
        if name in before
    }
    return result


def _db_brief(db: dict[str, dict[str, Any]]) -> str:
    return ", ".join(
        f"{name} {row['units_per_topup']}/{row['commits_per_topup']}/{row['statements_per_topup']}"
        for name, row in db.items()
    )


async def run_levels(
    topups: TopUps, args: argparse.Namespace, label: str, pids: dict[str, int], probe: Probe | None = None
) -> list[LoadResult]:
    results = []
    for level in args.level_list:

        def load(level: int = level) -> Awaitable[LoadResult]:
            duration = 0 if args.orders else args.duration
            return closed_loop(topups, level, duration_s=duration, orders=args.orders, label=label)

        result = await measured(load, pids, probe, args.idle_samples)
        say(
            f"{label} concurrency {level}: {result.tps:.1f} top-ups/s, "
            f"sustained {result.summary()['sustained_topups_per_s']}/s (drain {result.drain_s:.1f} s), "
            f"create p99 {result.summary()['create_ms']['p99']} ms, failed {result.failed}, "
            f"CPU ms per top-up {result.cpu_ms_per_topup}"
            + (f", units/commits/statements per top-up: {_db_brief(result.db)}" if result.db else "")
        )
        results.append(result)
    return results


async def bench_bare(args: argparse.Namespace) -> tuple[list[LoadResult], dict[str, float]]:
    chain = BareChain.start()
    sampler = RssSampler(chain.pids())
    try:
        sampler.start()
        topups = TopUps(chain.recharge, chain.wechat, bench_cards(args.cards), AMOUNT_FEN, "bare")
        try:
            return await run_levels(topups, args, "bare", chain.pids()), sampler.peak_mb()
        finally:
            await topups.close()
    finally:
        sampler.stop()
        chain.stop()


def bench_cards(count: int) -> list[BenchCard]:
    """``count`` card numbers (at least one per merchant), dealt to the bench's merchants in turn,
    so top-ups going round them alternate between merchants. The bare chain uses the same ones."""
    return [
        BenchCard(BENCH_MERCHANTS[i % len(BENCH_MERCHANTS)].merchant_id, f"66{i:014d}")
        for i in range(max(count, len(BENCH_MERCHANTS)))
    ]


async def prepare_merchants(services: Services, stubs: Stubs, keys_dir: Path, count: int) -> list[BenchCard]:
    """Opens the bench's merchants (configuration in the recharge center, bonus rule in the card
    system) and ``count`` cards spread over them; returns the cards."""
    notes = await open_merchants(
        services.recharge, services.card, keys_dir, BENCH_MERCHANTS, operator="bench"
    )
    for note in notes:
        say(note)
    cards = bench_cards(count)
    slots = asyncio.Semaphore(32)

    async def open_one(card: BenchCard) -> None:
        async with slots:
            await stubs.card_admin.OpenCard(
                card_pb2.OpenCardRequest(
                    card_no=card.card_no, holder_name="bench", merchant_id=card.merchant_id
                ),
                timeout=30,
            )

    await asyncio.gather(*(open_one(c) for c in cards))
    return cards


def start_services(
    args: argparse.Namespace, workdir: Path, databases: Databases, stats_file: Path
) -> Services:
    """The three services with their default settings (plus --log-level), each writing its database
    counters to its own file in ``workdir``; with --profile, that one under cProfile."""
    missing: list[str] = []
    flags = {"log-level": args.log_level}
    built = build_stack(
        workdir,
        card_args=flag_args("card_service", flags, missing),
        recharge_args=flag_args("recharge_service", flags, missing),
        wechat_args=flag_args("wechat_mock", flags, missing) + direct_merchants_flag(BENCH_MERCHANTS),
        db_url_for=databases.urls,
    )
    env = stats_env(workdir)
    for service in built.services:
        service.env = {**service.env, **env[service.name]}
    if args.profile:
        service = getattr(built, args.profile)
        service.env = {**service.env, "PROFILE_MODULE": service.module, "PROFILE_OUT": str(stats_file)}
        service.module = "scripts.bench.profiled"
    stack = start_stack(built)
    return Services(stack.recharge.address, stack.card.address, stack.wechat.address, stack, missing)


async def bench_service(args: argparse.Namespace, workdir: Path, databases: Databases) -> dict[str, Any]:
    stats_file = Path(args.out) / f"profile-{args.profile}.prof"
    services = await asyncio.to_thread(start_services, args, workdir, databases, stats_file)
    counters = DbCounters.from_env(stats_env(workdir))
    sampler = RssSampler(services.pids())
    out: dict[str, Any] = {"notes": [f"missing flag: {m}" for m in services.missing_flags]}
    try:
        sampler.start()
        async with Stubs.open(services.recharge, services.card, services.wechat) as stubs:
            cards = await prepare_merchants(services, stubs, workdir / "wechat-keys", args.cards)
            probe = Probe(counters, stubs, args.quick)
            await probe.measure_idle(services.pids())
            out["db_idle_per_s"] = probe.idle
            topups = TopUps(services.recharge, services.wechat, cards, AMOUNT_FEN, "bench")
            try:
                levels = await run_levels(topups, args, "service", services.pids(), probe)
                out["levels"] = levels
                peak = max(levels, key=lambda r: r.sustained_tps)
                rate = max(1.0, peak.sustained_tps / 2)
                half = await measured(
                    lambda: open_loop(topups, rate, args.duration, label="half-peak"),
                    services.pids(),
                    probe,
                    args.idle_samples,
                )
                say(
                    f"half of peak ({rate:.0f}/s offered): create p99 {half.summary()['create_ms']['p99']} ms"
                )
                out["half_peak"] = half
                out["sentinel"] = await bench_backlog(stubs, topups, args, services.pids(), probe)
            finally:
                await topups.close()
        out["rss_mb"] = sampler.peak_mb()
    finally:
        sampler.stop()
        services.stop()
    if args.profile:
        out["profile"] = write_profile(stats_file, Path(args.out) / f"profile-{args.profile}.txt")
    return out


def write_profile(stats_file: Path, text_file: Path) -> str:
    """The top of the cProfile stats, by own time and by cumulative time, as text."""
    buffer = io.StringIO()
    stats = pstats.Stats(str(stats_file), stream=buffer)
    stats.strip_dirs().sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)
    text_file.write_text(buffer.getvalue())
    say(f"profile written to {text_file}")
    return str(text_file)


async def bench_backlog(
    stubs: Stubs, topups: TopUps, args: argparse.Namespace, pids: dict[str, int], probe: Probe
) -> dict[str, Any]:
    if args.backlog <= 0:
        return {"skipped": "--backlog 0"}
    missing = await sentinel_available(stubs)
    if missing:
        say(f"sentinel backlog skipped: {missing}")
        return {"skipped": missing}
    say(f"building a backlog of {args.backlog} CREDIT_UNKNOWN orders (ConfirmRecharge faulted)")
    stuck = await build_backlog(stubs, topups, args.backlog, 64, say)
    await wait_idle(pids, samples=args.idle_samples)
    before = await probe.snapshot()
    result = await resolve_backlog(stubs, stuck, 600.0, say)
    await wait_idle(pids, samples=args.idle_samples)
    await probe.settle()
    # Per resolved order: the sentinel's claims and settlements (recharge) and the confirmations
    # and follow-ups it caused in the simulators. No top-ups here, so no per-call figures.
    db = per_topup(before, await probe.snapshot(), result["resolved"])
    result["db_per_order"] = {
        name: {k: v for k, v in row.items() if not k.endswith("_per_call") and k != "calls_per_topup"}
        for name, row in db.items()
    }
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    started = time.time()
    databases: Databases | None = None
    db_note = ""
    try:
        bare, bare_rss = ([], {}) if args.skip_bare else await bench_bare(args)
        databases = await asyncio.to_thread(Databases.start, args.db)
        say(f"services on {databases.version}")
        db_note = databases.note()
        service = await bench_service(args, workdir / "stack", databases)
    finally:
        if databases is not None:
            await asyncio.to_thread(databases.stop)
        shutil.rmtree(workdir, ignore_errors=True)
    levels = []
    for result in service["levels"]:
        match = next((b for b in bare if b.concurrency == result.concurrency), None)
        levels.append(
            {
                "concurrency": result.concurrency,
                "service": result.summary(),
                "bare": match.summary() if match else None,
                "ratio": round(result.sustained_tps / match.sustained_tps, 3)
                if match and match.sustained_tps
                else None,
            }
        )
    peak = max(service["levels"], key=lambda r: r.sustained_tps)
    bare_peak = max(bare, key=lambda r: r.sustained_tps) if bare else None
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "levels": args.level_list,
            "duration_s": args.duration,
            "orders_per_level": args.orders,
            "cards": args.cards,
            "merchants": {m.merchant_id: m.mode for m in BENCH_MERCHANTS},
            "amount_fen": AMOUNT_FEN,
            "log_level": args.log_level,
            "db": args.db,
            "database": databases.version if databases else "",
            "backlog": args.backlog,
        },
        "levels": levels,
        "peak": {
            "topups_per_s": round(peak.sustained_tps, 1),
            "closed_loop_topups_per_s": round(peak.tps, 1),
            "at_concurrency": peak.concurrency,
            "bare_topups_per_s": round(bare_peak.sustained_tps, 1) if bare_peak else None,
            "bare_at_concurrency": bare_peak.concurrency if bare_peak else None,
            "ratio_to_bare": round(peak.sustained_tps / bare_peak.sustained_tps, 3)
            if bare_peak and bare_peak.sustained_tps
            else None,
            "db": peak.db,
        },
        "half_peak": service["half_peak"].summary(),
        "sentinel": service["sentinel"],
        "db_idle_per_s": service.get("db_idle_per_s", {}),
        "rss_mb": service["rss_mb"],
        "bare_rss_mb": bare_rss,
        "notes": service["notes"] + db_notes(service, db_note),
        "seconds": round(time.time() - started, 1),
    }
    report["goals"] = evaluate_goals(report)
    return report


def db_notes(service: dict[str, Any], db_note: str) -> list[str]:
    notes = [db_note] if db_note else []
    rows = [(name, row) for result in service["levels"] for name, row in result.db.items()]
    for name in ("card", "recharge", "wechat"):
        if not any(n == name for n, _ in rows):
            notes.append(
                f"{name}: no database counters (its process wrote no RC_DB_STATS_FILE): its write "
                "figures and goal are not measured"
            )
        elif not any(n == name and row["counted"] for n, row in rows):
            notes.append(
                f"{name}: not one write unit counted while it served top-ups: its writes bypass "
                "rc_common.db.Database.write, so its write figures and goal are not measured"
            )
    if rows:
        notes.append(
            "database counters include the work a level left behind (outbox deliveries, payment "
            "notifications, customer notices) and periodic work in that window; at idle: "
            + ", ".join(
                f"{name} {rates.get('units', 0)} units/s"
                for name, rates in sorted(service.get("db_idle_per_s", {}).items())
            )
        )
    notes += [
        f"{name} units per call = units per top-up / ({calls})" for name, calls in CALLS_DIVIDED_BY.items()
    ]
    return notes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(run(args))
    print_table(report)
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    plot(report, out / "bench.png")
    print(f"\nwrote {out / 'bench.json'} and {out / 'bench.png'}")
    return 0
