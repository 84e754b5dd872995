"""How fast is a top-up, end to end, on this machine — and against what it could be at all.

1. The bare chain (scripts/bench_bare.py: do-nothing grpc.aio servers in three processes making
   the same seven hops a top-up makes) at each concurrency level.
2. The real services (started here with their default settings) at the same levels: top-ups per
   second (create -> pay -> notify -> CREDITED, seen by polling GetRechargeOrder), p50/p95/p99
   of CreateRechargeOrder and of pay->credited.
3. Open-loop arrivals at half the peak rate: CreateRechargeOrder's p99 there.
4. The sentinel resolving a backlog of N orders stuck in CREDIT_UNKNOWN (skipped with a note while
   RechargeOps.RunSentinel is UNIMPLEMENTED).
5. Peak RSS of each service process (VmHWM).
Prints a table, writes bench.json and bench.png (throughput and p99 against concurrency) to --out.

  .venv/bin/python scripts/bench.py                     # `make bench`
  .venv/bin/python scripts/bench.py --levels 1,8,32 --duration 5 --backlog 2000
  .venv/bin/python scripts/bench.py --quick             # seconds; for the test
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python scripts/bench.py` puts scripts/ first on sys.path, not the repository root, and the
# `scripts` package is not installed: add the root so `from scripts.x import ...` works.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from protos.card.v1 import card_pb2  # noqa: E402
from scripts.bench_load import LoadResult, TopUps, closed_loop, open_loop  # noqa: E402
from scripts.bench_procs import BareChain, RssSampler, cpu_seconds  # noqa: E402
from scripts.bench_report import evaluate_goals, plot, print_table  # noqa: E402
from scripts.bench_sentinel import build_backlog, resolve_backlog, sentinel_available  # noqa: E402
from scripts.chaos_driver import BONUS_TIERS  # noqa: E402
from scripts.chaos_rpc import Stubs  # noqa: E402
from scripts.chaos_stack import start_fresh  # noqa: E402

AMOUNT_FEN = 20_000  # ¥200: gets the ¥20 bonus tier, so the bonus path is measured too


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="1,8,32,64,128", help="concurrency levels, comma separated")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per level")
    parser.add_argument("--orders", type=int, default=0, help="top-ups per level (instead of --duration)")
    parser.add_argument(
        "--backlog", type=int, default=10_000, help="stuck orders for the sentinel (0 = skip)"
    )
    parser.add_argument("--cards", type=int, default=500, help="cards the top-ups spread over")
    parser.add_argument("--log-level", default="info", help="the services' log level")
    parser.add_argument("--out", default=str(ROOT / "bench-results"), help="directory for bench.json/png")
    parser.add_argument(
        "--profile",
        choices=("card", "recharge", "wechat"),
        default="",
        help="run this service under cProfile; top functions to OUT/profile-SERVICE.txt",
    )
    parser.add_argument("--skip-bare", action="store_true", help="do not run the bare chain")
    parser.add_argument("--quick", action="store_true", help="tiny run: levels 1,4, 1.5 s, backlog 20")
    args = parser.parse_args(argv)
    if args.quick:
        args.levels, args.duration, args.orders = "1,4", 1.5, 0
        args.backlog, args.cards = min(args.backlog, 20), min(args.cards, 20)
    args.level_list = [int(x) for x in args.levels.split(",") if x.strip()]
    return args


async def run_levels(
    topups: TopUps, args: argparse.Namespace, label: str, pids: dict[str, int]
) -> list[LoadResult]:
    results = []
    for level in args.level_list:
        before = cpu_seconds(pids)
        result = await closed_loop(
            topups, level, duration_s=0 if args.orders else args.duration, orders=args.orders, label=label
        )
        after = cpu_seconds(pids)
        result.cpu_ms_per_topup = {
            name: round((after[name] - before[name]) * 1000 / max(1, result.completed), 2)
            for name in sorted(after)
            if name in before
        }
        result.cpu_busy = {
            name: round((after[name] - before[name]) / result.elapsed_s, 2)
            for name in sorted(after)
            if name in before
        }
        say(
            f"{label} concurrency {level}: {result.tps:.1f} top-ups/s, "
            f"create p99 {result.summary()['create_ms']['p99']} ms, failed {result.failed}, "
            f"CPU ms per top-up {result.cpu_ms_per_topup}"
        )
        results.append(result)
    return results


async def bench_bare(args: argparse.Namespace) -> tuple[list[LoadResult], dict[str, float]]:
    chain = BareChain.start()
    sampler = RssSampler(chain.pids())
    try:
        sampler.start()
        topups = TopUps(chain.recharge, chain.wechat, ["0"], AMOUNT_FEN, "bare")
        try:
            return await run_levels(topups, args, "bare", chain.pids()), sampler.peak_mb()
        finally:
            await topups.close()
    finally:
        sampler.stop()
        chain.stop()


async def prepare_cards(stubs: Stubs, count: int) -> list[str]:
    admin = stubs.card_admin
    rule = await admin.GetRechargeRule(card_pb2.GetRechargeRuleRequest(), timeout=10)
    if not rule.tiers:
        await admin.SetRechargeRule(
            card_pb2.SetRechargeRuleRequest(
                tiers=[card_pb2.BonusTier(min_pay_fen=p, bonus_fen=b) for p, b in BONUS_TIERS]
            ),
            timeout=10,
        )
    cards = [f"66{i:014d}" for i in range(count)]
    slots = asyncio.Semaphore(32)

    async def open_one(card_no: str) -> None:
        async with slots:
            await admin.OpenCard(card_pb2.OpenCardRequest(card_no=card_no, holder_name="bench"), timeout=30)

    await asyncio.gather(*(open_one(c) for c in cards))
    return cards


async def bench_service(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    stats_file = Path(args.out) / f"profile-{args.profile}.prof"
    services = await asyncio.to_thread(
        start_fresh,
        workdir,
        recharge_flags={"log-level": args.log_level},
        wechat_flags={"log-level": args.log_level},
        card_flags={"log-level": args.log_level},
        profile=(args.profile, stats_file) if args.profile else None,
    )
    sampler = RssSampler(services.pids())
    out: dict[str, Any] = {"notes": [f"missing flag: {m}" for m in services.missing_flags]}
    try:
        sampler.start()
        async with Stubs.open(services.recharge, services.card, services.wechat) as stubs:
            cards = await prepare_cards(stubs, args.cards)
            topups = TopUps(services.recharge, services.wechat, cards, AMOUNT_FEN, "bench")
            try:
                levels = await run_levels(topups, args, "service", services.pids())
                out["levels"] = levels
                peak = max(levels, key=lambda r: r.tps)
                rate = max(1.0, peak.tps / 2)
                half = await open_loop(topups, rate, args.duration, label="half-peak")
                say(
                    f"half of peak ({rate:.0f}/s offered): create p99 {half.summary()['create_ms']['p99']} ms"
                )
                out["half_peak"] = half
                out["sentinel"] = await bench_backlog(stubs, topups, args)
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


async def bench_backlog(stubs: Stubs, topups: TopUps, args: argparse.Namespace) -> dict[str, Any]:
    if args.backlog <= 0:
        return {"skipped": "--backlog 0"}
    missing = await sentinel_available(stubs)
    if missing:
        say(f"sentinel backlog skipped: {missing}")
        return {"skipped": missing}
    say(f"building a backlog of {args.backlog} CREDIT_UNKNOWN orders (ConfirmRecharge faulted)")
    stuck = await build_backlog(stubs, topups, args.backlog, 64, say)
    return await resolve_backlog(stubs, stuck, 600.0, say)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    started = time.time()
    try:
        bare, bare_rss = ([], {}) if args.skip_bare else await bench_bare(args)
        service = await bench_service(args, workdir / "stack")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    levels = []
    for result in service["levels"]:
        match = next((b for b in bare if b.concurrency == result.concurrency), None)
        levels.append(
            {
                "concurrency": result.concurrency,
                "service": result.summary(),
                "bare": match.summary() if match else None,
                "ratio": round(result.tps / match.tps, 3) if match and match.tps else None,
            }
        )
    peak = max(service["levels"], key=lambda r: r.tps)
    bare_peak = max(bare, key=lambda r: r.tps) if bare else None
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
            "amount_fen": AMOUNT_FEN,
            "log_level": args.log_level,
        },
        "levels": levels,
        "peak": {
            "topups_per_s": round(peak.tps, 1),
            "at_concurrency": peak.concurrency,
            "bare_topups_per_s": round(bare_peak.tps, 1) if bare_peak else None,
            "bare_at_concurrency": bare_peak.concurrency if bare_peak else None,
            "ratio_to_bare": round(peak.tps / bare_peak.tps, 3) if bare_peak and bare_peak.tps else None,
        },
        "half_peak": service["half_peak"].summary(),
        "sentinel": service["sentinel"],
        "rss_mb": service["rss_mb"],
        "bare_rss_mb": bare_rss,
        "notes": service["notes"],
        "seconds": round(time.time() - started, 1),
    }
    report["goals"] = evaluate_goals(report)
    return report


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


if __name__ == "__main__":
    sys.exit(main())
