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
6. With --metrics both (`make bench`): the levels again with every process's metrics off
   (RC_METRICS=off), and the throughput difference per level (goal < 5 %; reported, not asserted).
Prints a table and the goals of issue 10 (met / NOT met / not measured), writes bench.json and
bench.png (throughput and p99 against concurrency) to --out. Timings are never asserted anywhere.

Replicas (--replicas N, PostgreSQL only; scripts/bench/replicas.py): N recharge-center processes on
one database, the simulator notifying all of them, the load spread over them with client-side
round_robin. The recharge center's database counters and CPU are the replicas' sums (each
replica's own beside it), peak RSS is per replica.

Comparison (--compare; scripts/bench/compare.py): the same load on SQLite (1 replica), PostgreSQL
(1 replica) and PostgreSQL (--replicas, default 2) in one invocation, beside one bare chain, printed
side by side. Absolute figures drift 2-4x between runs on a shared machine: compare the ratios of
one run, not figures of different runs.

  .venv/bin/python -m scripts.bench                     # `make bench` (backlog 10000)
  .venv/bin/python -m scripts.bench --levels 1,8,32 --duration 5 --backlog 2000
  .venv/bin/python -m scripts.bench --db postgresql     # the same on PostgreSQL
  .venv/bin/python -m scripts.bench --db postgresql --replicas 2
  .venv/bin/python -m scripts.bench --compare --levels 8,32 --duration 6   # `make bench-replicas`
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
import tempfile
import time
from pathlib import Path
from typing import Any

from protos.card.v1 import card_pb2
from scripts.bench.compare import compare_report, plot_compare, print_compare
from scripts.bench.db import CALLS_DIVIDED_BY, Databases, DbCounters, per_topup, stats_env
from scripts.bench.load import BenchCard, LoadResult, TopUps, open_loop
from scripts.bench.measure import Probe, measured, run_levels, say
from scripts.bench.procs import BareChain, CpuMeter, RssSampler, wait_idle
from scripts.bench.replicas import BenchServices, replica_names, start_services
from scripts.bench.report import evaluate_goals, plot, print_table
from scripts.bench.sentinel import build_backlog, not_credited, resolve_backlog, sentinel_available
from scripts.chaos.rpc import Stubs
from scripts.merchants import BENCH_MERCHANTS, open_merchants
from scripts.stack import KEYS_DIR, ROOT
from tests.postgres import find_bindir

AMOUNT_FEN = 20_000  # ¥200: gets the ¥20 bonus tier, so the bonus path is measured too


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
        default=None,
        help="CREDIT_UNKNOWN orders the sentinel resolves; the goal is 10000 in <= 30 s (default "
        "10000, with --compare 0; 0 = skip)",
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
        default=None,
        help="the services' databases: SQLite files in a temp dir (default), or one throwaway "
        "PostgreSQL server (tests/postgres.py, fsync off) with a database per service",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="recharge-center replicas on its one database (default %(default)s; more than 1 needs "
        "--db postgresql); with --compare, those of the third run (default 2)",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="run the same load on SQLite (1 replica), PostgreSQL (1) and PostgreSQL (--replicas, "
        "default 2) and print them side by side with the bare chain",
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
        help="run this service (the recharge center's first replica) under cProfile; top functions "
        "to OUT/profile-SERVICE.txt",
    )
    parser.add_argument(
        "--skip-bare",
        action="store_true",
        help="do not run the bare chain (no ratio, that goal not measured)",
    )
    parser.add_argument(
        "--metrics",
        choices=("on", "off", "both"),
        default="on",
        help="the services' Prometheus metrics: on (default), off (RC_METRICS=off), or both: the "
        "levels once more with them off, and the throughput difference (not with --compare)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny run for the test: levels 1,4, 1 s each, backlog <= 10, cards <= 10",
    )
    args = parser.parse_args(argv)
    check_replicas(parser, args)
    if args.compare and args.metrics == "both":
        parser.error("--metrics both compares one run: drop it with --compare")
    args.levels_only = False
    if args.backlog is None:
        args.backlog = 0 if args.compare else 10_000
    if args.quick:
        args.levels, args.duration, args.orders = "1,4", 1.0, 0
        args.backlog, args.cards = min(args.backlog, 10), min(args.cards, 10)
    args.idle_samples = 2 if args.quick else 4
    args.level_list = [int(x) for x in args.levels.split(",") if x.strip()]
    if not args.level_list or min(args.level_list) < 1:
        parser.error("--levels wants positive integers, e.g. 1,8,32")
    return args


def check_replicas(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse what cannot run: replicas on SQLite (one process's file), a --db or --profile that
    --compare would ignore; PostgreSQL binaries missing for a run that needs them."""
    if args.replicas < 1:
        parser.error("--replicas wants 1 or more")
    if args.compare:
        if args.db is not None:
            parser.error("--compare runs SQLite and PostgreSQL itself: drop --db")
        if args.profile:
            parser.error("--profile profiles one run: drop it with --compare")
        args.replicas = max(2, args.replicas)
    else:
        args.db = args.db or "sqlite"
        if args.replicas > 1 and args.db != "postgresql":
            parser.error(
                f"--replicas {args.replicas} needs --db postgresql: replicas share one database, and "
                "SQLite is one process's file (--db sqlite runs --replicas 1)"
            )
    if (args.compare or args.db == "postgresql") and find_bindir() is None:
        parser.error("PostgreSQL binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or on PATH")


def runs_of(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(database, recharge-center replicas) of each run this invocation makes."""
    if args.compare:
        return [("sqlite", 1), ("postgresql", 1), ("postgresql", args.replicas)]
    return [(args.db, args.replicas)]


async def bench_bare(args: argparse.Namespace) -> tuple[list[LoadResult], dict[str, float]]:
    chain = BareChain.start()
    sampler = RssSampler(chain.pids())
    try:
        sampler.start()
        topups = TopUps(chain.recharge, chain.wechat, bench_cards(args.cards), AMOUNT_FEN, "bare")
        try:
            meter = CpuMeter(chain.pids())
            return await run_levels(topups, args, "bare", meter), sampler.peak_mb()
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


async def prepare_merchants(
    services: BenchServices, stubs: Stubs, keys_dir: Path, count: int
) -> list[BenchCard]:
    """Opens the bench's merchants (configuration in the recharge center, bonus rule in the card
    system) and ``count`` cards spread over them; returns the cards."""
    notes = await open_merchants(
        services.recharge, services.card, keys_dir, BENCH_MERCHANTS, services.auth
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


async def bench_service(
    args: argparse.Namespace, workdir: Path, databases: Databases, replicas: int
) -> dict[str, Any]:
    stats_file = Path(args.out) / f"profile-{args.profile}.prof"
    services = await asyncio.to_thread(start_services, args, workdir, databases, replicas, stats_file)
    counters = DbCounters.from_env(stats_env(workdir, services.pids()), services.groups)
    sampler = RssSampler(services.pids())
    postgres = databases.server_pid()
    meter = CpuMeter(services.pids(), services.groups, {"postgres": postgres} if postgres else {})
    out: dict[str, Any] = {
        "notes": [f"missing flag: {m}" for m in services.missing_flags],
        "groups": {name: list(members) for name, members in services.groups.items()},
    }
    try:
        sampler.start()
        async with Stubs.open(services.recharge, services.card, services.wechat, services.auth) as stubs:
            cards = await prepare_merchants(services, stubs, workdir / KEYS_DIR, args.cards)
            probe = Probe(counters, stubs, args.quick)
            await probe.measure_idle(services.pids())
            out["db_idle_per_s"] = probe.idle
            topups = TopUps(services.recharge_target, services.wechat, cards, AMOUNT_FEN, "bench")
            try:
                levels = await run_levels(topups, args, "service", meter, probe)
                out["levels"] = levels
                if args.levels_only:  # the metrics-off run: throughput only
                    return out
                peak = max(levels, key=lambda r: r.sustained_tps)
                rate = max(1.0, peak.sustained_tps / 2)
                half = await measured(
                    lambda: open_loop(topups, rate, args.duration, label="half-peak"),
                    meter,
                    probe,
                    args.idle_samples,
                )
                say(
                    f"half of peak ({rate:.0f}/s offered): create p99 {half.summary()['create_ms']['p99']} ms"
                )
                out["half_peak"] = half
                out["sentinel"] = await bench_backlog(stubs, topups, args, meter, probe)
                out["not_credited"] = await not_credited(stubs, topups.merchants)
            finally:
                await topups.close()
        out["rss_mb"] = sampler.peak_mb()
    finally:
        sampler.stop()
        services.stop()
        out["log_problems"] = services.log_problems()
        out.setdefault("rss_mb", sampler.peak_mb())
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
    stubs: Stubs, topups: TopUps, args: argparse.Namespace, meter: CpuMeter, probe: Probe
) -> dict[str, Any]:
    """The sentinel's rate on a backlog (RunSentinel on the first replica; with several, the others'
    own sentinel rounds may resolve some of it too, as in production)."""
    if args.backlog <= 0:
        return {"skipped": "--backlog 0"}
    missing = await sentinel_available(stubs)
    if missing:
        say(f"sentinel backlog skipped: {missing}")
        return {"skipped": missing}
    say(f"building a backlog of {args.backlog} CREDIT_UNKNOWN orders (ConfirmRecharge faulted)")
    stuck = await build_backlog(stubs, topups, args.backlog, 64, say)
    await wait_idle(meter.pids, samples=args.idle_samples)
    before = await probe.snapshot()
    result = await resolve_backlog(stubs, stuck, 600.0, say)
    await wait_idle(meter.pids, samples=args.idle_samples)
    await probe.settle()
    # Per resolved order: the sentinel's claims and settlements (recharge) and the confirmations
    # and follow-ups it caused in the simulators. No top-ups here, so no per-call figures.
    db = per_topup(before, await probe.snapshot(), result["resolved"], meter.groups)
    result["db_per_order"] = {
        name: {k: v for k, v in row.items() if not k.endswith("_per_call") and k != "calls_per_topup"}
        for name, row in db.items()
    }
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The bare chain once, then each run of :func:`runs_of` on its own fresh databases; one run's
    report, or (--compare) the runs side by side."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    started = time.time()
    try:
        bare, bare_rss = ([], {}) if args.skip_bare else await bench_bare(args)
        reports = []
        for kind, replicas in runs_of(args):
            run_started = time.time()
            service = await bench_on(args, workdir / f"stack-{kind}-{replicas}", kind, replicas)
            reports.append(build_report(args, kind, replicas, bare, bare_rss, service, run_started))
        if args.metrics == "both":
            kind, replicas = runs_of(args)[0]
            say("the levels again with metrics off (RC_METRICS=off)")
            off_args = argparse.Namespace(**{**vars(args), "metrics": "off", "levels_only": True})
            off = await bench_on(off_args, workdir / "stack-metrics-off", kind, replicas)
            reports[0]["metrics_cost"] = metrics_cost(service["levels"], off["levels"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not args.compare:
        return reports[0]
    return compare_report(reports, bare, bare_rss, round(time.time() - started, 1))


async def bench_on(args: argparse.Namespace, workdir: Path, kind: str, replicas: int) -> dict[str, Any]:
    """The real services on fresh ``kind`` databases, the recharge center as ``replicas``."""
    databases = await asyncio.to_thread(Databases.start, kind)
    try:
        say(f"services on {databases.version}, recharge center: {', '.join(replica_names(replicas))}")
        service = await bench_service(args, workdir, databases, replicas)
    finally:
        await asyncio.to_thread(databases.stop)
    service["database"], service["db_note"] = databases.version, databases.note()
    return service


def build_report(
    args: argparse.Namespace,
    kind: str,
    replicas: int,
    bare: list[LoadResult],
    bare_rss: dict[str, float],
    service: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    """One run's report (bench.json): levels beside the bare chain, peak, goals, notes."""
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
            "db": kind,
            "database": service["database"],
            "replicas": replicas,
            "backlog": args.backlog,
        },
        #: Services run as several processes (replicas): their figures are these processes' sums.
        "groups": service["groups"],
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
        "not_credited": service["not_credited"],
        "log_problems": service["log_problems"],
        "notes": service["notes"] + db_notes(service, service["db_note"]),
        "seconds": round(time.time() - started, 1),
    }
    report["goals"] = evaluate_goals(report)
    return report


def metrics_cost(on: list[LoadResult], off: list[LoadResult]) -> dict[str, Any]:
    """Sustained top-ups/s per level with metrics on and off; difference = (off - on) / off."""
    rows = []
    for with_metrics, without in zip(on, off, strict=True):
        difference = (
            (without.sustained_tps - with_metrics.sustained_tps) / without.sustained_tps * 100
            if without.sustained_tps
            else None
        )
        rows.append(
            {
                "concurrency": with_metrics.concurrency,
                "on_topups_per_s": round(with_metrics.sustained_tps, 1),
                "off_topups_per_s": round(without.sustained_tps, 1),
                "difference_pct": round(difference, 1) if difference is not None else None,
            }
        )
    on_peak = max(r.sustained_tps for r in on)
    off_peak = max(r.sustained_tps for r in off)
    return {
        "levels": rows,
        "peak_on_topups_per_s": round(on_peak, 1),
        "peak_off_topups_per_s": round(off_peak, 1),
        "peak_difference_pct": round((off_peak - on_peak) / off_peak * 100, 1) if off_peak else None,
        "goal": "< 5 % (a shared machine drifts more than that between runs: compare several)",
    }


def print_metrics_cost(report: dict[str, Any]) -> None:
    cost = report.get("metrics_cost")
    if not cost:
        return
    print("\nmetrics cost (sustained top-ups/s, metrics on vs off; goal < 5 %):")
    for row in cost["levels"]:
        print(
            f"  c={row['concurrency']:<4} on {row['on_topups_per_s']:>8.1f}  "
            f"off {row['off_topups_per_s']:>8.1f}  difference {row['difference_pct']} %"
        )
    print(
        f"  peak   on {cost['peak_on_topups_per_s']:>8.1f}  off {cost['peak_off_topups_per_s']:>8.1f}"
        f"  difference {cost['peak_difference_pct']} %"
    )


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
    notes += [
        f"{name}: {len(members)} replicas on one database ({', '.join(members)}), the load spread over "
        "them by round_robin, WeChat notifying each in turn: its CPU and database figures are their "
        "sums (each replica's own in bench.json), peak RSS is per replica"
        for name, members in service["groups"].items()
    ]
    return notes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(run(args))
    if args.compare:
        print_compare(report)
        plot_compare(report, out / "bench.png")
    else:
        print_table(report)
        print_metrics_cost(report)
        plot(report, out / "bench.png")
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out / 'bench.json'} and {out / 'bench.png'}")
    return 0
