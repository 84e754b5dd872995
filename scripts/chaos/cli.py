"""Chaos runs: break the network on purpose, then prove DESIGN.md §4 and issue 12 still hold.

For each (profile, seed): start the three services with short hold/sentinel/notification settings
(or use running ones, --targets), open three merchants (scripts/merchants.py CHAOS_MERCHANTS: one
paid through WeChat Pay directly, two under the provider, each with its own bonus rule), set the
profile's seeded faults on both simulators, drive N top-ups spread over the merchants with bounded
concurrency (create, pay, spend part of the credit as it lands; each card belongs to one merchant
and every call names it), clear the faults, wait until quiet, observe through public RPCs and each
merchant's WeChat trade bill, and check with scripts/chaos/invariants.py (I1-I6, and M1-M4: no
credit, payment, refund or read across merchants; each merchant's money conserved), then reconcile
the run's business day (R: the daily three-way reconciliation of WeChat's bill, the orders and the
card journal finds no difference; orders left in MANUAL_REVIEW are pending there). Prints
progress, a table (end states, faults by kind, violations), money per merchant and how to replay a
failing run; --json writes the report; exits 1 on any violation.

With --targets the WeChat simulator must serve the direct-mode chaos merchant
(--direct-merchants 1900000701:wx7777777777777777) and --keys-dir must be its keys directory (the
run configures the direct merchant's wechat.keys_dir as that merchant's bundle in it,
merchant/direct/<mchid>/; the recharge center must run on the bundle, never on the directory).

Replicas (--replicas N, --db postgresql): N recharge centers r1..rN on one database (a throwaway
PostgreSQL server, tests/postgres.py, one for the session and a database per service and run; or
with --db sqlite one SQLite file), their migrate steps started at the same moment, WeChat notifying
all of them, the driver's and the observer's calls spread over them by client-side round_robin, and
the crash profiles killing a seeded random replica. The checker adds I7: no two replicas have
mutating calls on one order in flight at once (scripts/chaos/actors.py).

The same seed replays the same driver choices and the same fault decision streams. Under
concurrency the order in which calls reach a rule can differ from run to run; --concurrency 1
makes a replay exact up to timing.

  .venv/bin/python -m scripts.chaos --profile refund-chaos --seed 7 --orders 200
  .venv/bin/python -m scripts.chaos --replicas 2 --db postgresql --profile crash --seed 1
  .venv/bin/python -m scripts.chaos --wire http --profile all --seed 1 --seeds 3
  .venv/bin/python -m scripts.chaos --long            # every profile x 20 seeds x 200 orders, on
                                                      # 1 replica, then 2 and 3 on PostgreSQL, then
                                                      # the HTTP wire (1 replica; 2 on PostgreSQL)

The HTTP wire (--wire http): the recharge center pays through WeChat Pay APIv3 over HTTPS (the
simulator's facade) and takes notifications on its own HTTPS endpoint (scripts/stack.py, wire
"http"); the simulator's faults apply there under the gRPC method names. With replicas WeChat posts
to the first replica's endpoint only (its one notify_url); the sentinel recovers the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scripts.chaos.invariants import INVARIANTS
from scripts.chaos.profiles import PROFILES
from scripts.chaos.run import DEFAULT_KEYS_DIR, RunConfig, RunResult, execute
from scripts.chaos.services import DATABASES, Services, attach, start_fresh
from scripts.merchants import PROVIDER_MCHID
from scripts.stack import WIRES

if TYPE_CHECKING:
    from tests.postgres import PostgresServer

END_STATES = ("CREDITED", "REFUNDED", "CLOSED", "REJECTED", "MANUAL_REVIEW")
#: What --long adds after the pass it was asked for: replicas on PostgreSQL.
LONG_REPLICA_PASSES = ((2, "postgresql"), (3, "postgresql"))
#: What --long adds last (when run on the gRPC wire): the HTTP wire, on 1 replica and on 2 on PostgreSQL.
LONG_HTTP_PASSES = ((1, "sqlite", "http"), (2, "postgresql", "http"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", action="append", default=None,
                        help=f"comma separated or repeated; default: all of {', '.join(PROFILES)}")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: random, printed)")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds from --seed on")
    parser.add_argument("--orders", type=int, default=200, help="top-ups per run")
    parser.add_argument("--concurrency", type=int, default=16, help="top-ups in flight at once")
    parser.add_argument("--long", action="store_true",
                        help="every profile x 20 seeds x 200 orders; without --replicas also 2 and 3 "
                             "replicas on PostgreSQL")
    parser.add_argument("--replicas", type=int, default=None,
                        help="recharge-center replicas r1..rN on one database (default 1)")
    parser.add_argument("--wire", choices=WIRES, default="grpc",
                        help="payment wire of the started stack: grpc, or http (WeChat Pay APIv3 over HTTPS)")
    parser.add_argument("--db", choices=DATABASES, default="sqlite",
                        help="what the started services keep their data in: SQLite files, or a "
                             "throwaway PostgreSQL server (tests/postgres.py) with a database per service")
    parser.add_argument(
        "--targets",
        default="",
        help="RECHARGE,CARD,WECHAT host:port of running services (their operator token with the "
        "operator and test roles in $RC_OPS_TOKEN: e.g. var/ops.token of make run)",
    )
    parser.add_argument("--keys-dir", default=str(DEFAULT_KEYS_DIR),
                        help="with --targets: the WeChat simulator's keys directory (direct-mode "
                             "merchants' bundles are in its merchant/direct/<mchid>/, what the "
                             "recharge center is configured to read); default: make run's")
    parser.add_argument("--sp-mchid", default=PROVIDER_MCHID,
                        help="with --targets: the provider's WeChat merchant id (partner mode)")
    parser.add_argument("--workdir", default="", help="state dir for started services (default: a temp dir)")
    parser.add_argument("--share-stack", action="store_true", help="one started stack for all runs")
    parser.add_argument("--keep", action="store_true", help="keep the workdir even when every run passed")
    parser.add_argument("--quiet-timeout", type=float, default=120.0, help="seconds to wait until quiet")
    parser.add_argument("--json", default="", help="write the report to this file")
    parser.add_argument("--abandon-share", type=float, default=None,
                        help="share of orders never paid, which must end CLOSED after the order expiry "
                             "(default 0.05; 0 with --targets, whose expiry may be 30 min)")
    parser.add_argument("--reject-share", type=float, default=0.03,
                        help="share of orders below the minimum top-up (they must end REJECTED)")
    parser.add_argument("--spend-share", type=float, default=0.5,
                        help="share of paid orders whose customer spends part of the credit as it lands")
    args = parser.parse_args(argv)
    names = [n.strip() for p in (args.profile or []) for n in p.split(",") if n.strip()]
    if args.long:
        args.seeds = max(args.seeds, 20)
        names = names or list(PROFILES)
    args.profiles = names or list(PROFILES)
    args.keys_dir = Path(args.keys_dir).resolve()
    if args.abandon_share is None:
        args.abandon_share = 0.0 if args.targets else 0.05
    unknown = [n for n in args.profiles if n not in PROFILES]
    if unknown:
        parser.error(f"unknown profile(s) {unknown}; known: {', '.join(PROFILES)}")
    if args.seed is None:
        args.seed = 1 if args.long else int.from_bytes(os.urandom(3), "big")
    if args.replicas is not None and args.replicas < 1:
        parser.error("--replicas must be at least 1")
    if args.targets and (args.replicas or 1) > 1:
        parser.error("--replicas starts its own stack; it does not combine with --targets")
    if args.targets and args.wire != "grpc":
        parser.error("--wire starts its own stack; it does not combine with --targets")
    #: (replicas, db, wire) per pass, in order.
    args.passes = [(args.replicas or 1, args.db, args.wire)]
    if args.long and args.replicas is None and not args.targets:
        args.passes += [(n, db, args.wire) for n, db in LONG_REPLICA_PASSES]
        if args.wire == "grpc":
            args.passes += list(LONG_HTTP_PASSES)
    return args


def wire_note(wire: str) -> str:
    """``, http wire`` (nothing for the default gRPC wire)."""
    return "" if wire == "grpc" else f", {wire} wire"


def replay_command(result: RunResult) -> str:
    c = result.config
    command = (f".venv/bin/python -m scripts.chaos --profile {c.profile.name} --seed {c.seed} "
               f"--orders {c.orders} --concurrency {c.concurrency}")
    if result.replicas > 1 or result.db != "sqlite":
        command += f" --replicas {result.replicas} --db {result.db}"
    if result.wire != "grpc":
        command += f" --wire {result.wire}"
    return command


def where(result: RunResult) -> str:
    """``1/sqlite``, ``2/pg``, ``1/sqlite/http``: replicas, database and (if not gRPC) wire of a run."""
    wire = "" if result.wire == "grpc" else f"/{result.wire}"
    return f"{result.replicas}/{'pg' if result.db == 'postgresql' else result.db}{wire}"


def print_table(results: list[RunResult]) -> None:
    head = f"{'profile':<14}{'repl/db':>14}{'seed':>6}{'orders':>7}"
    head += "".join(f"{s[:9]:>10}" for s in END_STATES)
    head += f"{'other':>7}{'faults':>8}{'kills':>6}{'viol':>6}{'secs':>7}"
    print(head)
    print("-" * len(head))
    for r in results:
        states = r.end_states
        other = sum(n for s, n in states.items() if s not in END_STATES)
        row = f"{r.config.profile.name:<14}{where(r):>14}{r.config.seed:>6}{len(r.observation.orders):>7}"
        row += "".join(f"{states.get(s, 0):>10}" for s in END_STATES)
        kills = r.tally.by_kind().get("KILL9", 0)
        row += f"{other:>7}{r.tally.total - kills:>8}{kills:>6}"
        row += f"{len(r.result.violations):>6}{r.timings['total']:>7.0f}"
        print(row)
    print()
    by_profile: dict[str, Counter[str]] = {}
    for r in results:
        by_profile.setdefault(r.config.profile.name, Counter()).update(r.tally.by_kind())
    print("faults injected, by kind (summed over seeds):")
    for name, kinds in by_profile.items():
        text = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"
        print(f"  {name:<14} {text}")
    print_merchants(results)


def print_merchants(results: list[RunResult]) -> None:
    """Money per merchant, summed over runs: each is checked to balance on its own (M4)."""
    modes = {a.merchant_id: a.mode for r in results for a in r.accounts}
    sums: dict[str, Counter[str]] = {}
    for r in results:
        for merchant_id, totals in r.result.summary.get("merchants", {}).items():
            sums.setdefault(merchant_id, Counter()).update(totals)
    if not sums:
        return
    print("\nper merchant (summed over runs; paid = credited + refunded for each):")
    print(f"  {'merchant':<14}{'mode':<9}{'orders':>7}{'paid':>12}{'credited':>12}{'refunded':>11}"
          f"{'parked':>9}{'cards':>7}")
    for merchant_id, t in sorted(sums.items()):
        print(f"  {merchant_id:<14}{modes.get(merchant_id, '?'):<9}{t['orders']:>7}{t['paid_fen']:>12}"
              f"{t['credited_principal_fen']:>12}{t['refunded_fen']:>11}{t['manual_review_fen']:>9}"
              f"{t['cards']:>7}")


def print_failures(results: list[RunResult]) -> None:
    for r in results:
        if r.result.ok and r.quiet:
            continue
        print()
        print(f"{r.config.profile.name} seed {r.config.seed} ({where(r)}): {len(r.result.violations)} "
              f"violation(s) {r.result.by_invariant()}")
        for v in r.result.violations[:25]:
            print(f"  {v}")
        if len(r.result.violations) > 25:
            print(f"  ... {len(r.result.violations) - 25} more (see --json)")
        print(f"  replay: {replay_command(r)}")
    for r in results:
        for note in r.notes:
            print(f"note [{r.config.profile.name} seed {r.config.seed}]: {note}")


def report_json(
    args: argparse.Namespace, results: list[RunResult], errors: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "command": " ".join(["python -m scripts.chaos", *sys.argv[1:]]),
        "seed": args.seed,
        "seeds": args.seeds,
        "profiles": args.profiles,
        "passes": [{"replicas": n, "db": db, "wire": wire} for n, db, wire in args.passes],
        "violations_by_invariant": violations_by_invariant(results),
        "runs": [dict(r.to_json(), replay=replay_command(r)) for r in results],
        "errors": errors,
        "violations_total": sum(len(r.result.violations) for r in results),
        "orders_total": sum(len(r.observation.orders) for r in results),
    }


def violations_by_invariant(results: list[RunResult]) -> dict[str, int]:
    totals = Counter({name: 0 for name in INVARIANTS})
    for r in results:
        totals.update(v.invariant for v in r.result.violations)
    return dict(totals)


@dataclass
class Pass:
    """One stack shape the runs are made on: replicas and database (a PostgreSQL server shared by
    the pass's runs, each run with databases of its own)."""

    replicas: int
    db: str
    postgres: PostgresServer | None = None
    wire: str = "grpc"

    def start(self, workdir: Path) -> Services:
        if self.db == "postgresql" and self.postgres is None:
            from tests.postgres import start_postgres

            self.postgres = start_postgres()
        return start_fresh(
            workdir, replicas=self.replicas, db=self.db, postgres=self.postgres, wire=self.wire
        )

    def stop(self) -> None:
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None

    def dirname(self, name: str, seed: int) -> str:
        wire = "" if self.wire == "grpc" else f"{self.wire}-"
        if self.replicas == 1 and self.db == "sqlite":
            return f"{wire}{name}-{seed}"
        return f"{wire}r{self.replicas}-{self.db}-{name}-{seed}"


async def run_one(
    config: RunConfig, shared: Services | None, workdir: Path | None, shape: Pass | None = None
) -> RunResult:
    services = shared
    if services is None:
        assert workdir is not None
        shape = shape or Pass(1, "sqlite")
        services = await asyncio.to_thread(shape.start, workdir)
    try:
        return await execute(config, services)
    finally:
        if shared is None:
            services.stop()


def write_json(args: argparse.Namespace, results: list[RunResult], errors: list[dict[str, Any]]) -> None:
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report_json(args, results, errors), indent=2))


async def run_all(args: argparse.Namespace, errors: list[dict[str, Any]]) -> list[RunResult]:
    results: list[RunResult] = []
    temp = not args.workdir and not args.targets
    base = Path(args.workdir or tempfile.mkdtemp(prefix="chaos-")) if not args.targets else None
    failed = False
    try:
        for replicas, db, wire in args.passes:
            shape = Pass(replicas, db, wire=wire)
            try:
                failed = await _run_pass(args, shape, base, results, errors) or failed
            finally:
                shape.stop()
    finally:
        if base is not None:
            if temp and not failed and not args.keep:
                shutil.rmtree(base, ignore_errors=True)
            else:
                print(f"state and logs kept in {base}")
    return results


async def _run_pass(
    args: argparse.Namespace,
    shape: Pass,
    base: Path | None,
    results: list[RunResult],
    errors: list[dict[str, Any]],
) -> bool:
    """Every (profile, seed) on one stack shape; True when a run failed or could not run."""
    shared: Services | None = None
    failed = False
    label = f"{shape.replicas} replica(s) on {shape.db}{wire_note(shape.wire)}"
    try:
        if args.targets:
            shared = attach(args.targets, args.keys_dir, args.sp_mchid)
        elif args.share_stack:
            assert base is not None
            shared = await asyncio.to_thread(shape.start, base / shape.dirname("shared", 0))
    except Exception as exc:  # e.g. no PostgreSQL binaries: this pass cannot run, the others may
        errors.append({"profile": "*", "seed": args.seed, "replicas": shape.replicas, "db": shape.db,
                       "error": repr(exc)[:2000]})
        print(f"[{label}] ERROR {exc!r}"[:2000], flush=True)
        return True
    try:
        for name in args.profiles:
            for seed in range(args.seed, args.seed + args.seeds):
                config = RunConfig(
                    PROFILES[name], seed, args.orders, args.concurrency, args.quiet_timeout,
                    abandon_share=args.abandon_share, reject_share=args.reject_share,
                    spend_share=args.spend_share, nonce=f"{time.time_ns()}" if args.targets else "",
                )
                workdir = base / shape.dirname(name, seed) if base else None
                try:
                    result = await run_one(config, shared, workdir, shape)
                except Exception as exc:  # a run that could not run is a failure, not the end of the session
                    failed = True
                    errors.append({"profile": name, "seed": seed, "replicas": shape.replicas, "db": shape.db,
                                   "error": repr(exc)[:2000]})
                    print(f"[{name} seed={seed} {label}] ERROR {exc!r}"[:2000], flush=True)
                    continue
                results.append(result)
                if args.json:  # keep what is known so far, should a later run go wrong
                    write_json(args, results, errors)
                failed = failed or not result.result.ok
                print(f"[{name} seed={seed} {label}] {len(result.result.violations)} violation(s), "
                      f"end states {result.end_states}, {result.timings['total']:.0f}s", flush=True)
    finally:
        if shared is not None:
            shared.stop()
    return failed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shapes = ", ".join(f"{n} replica(s) on {db}{wire_note(w)}" for n, db, w in args.passes)
    print(f"chaos: seed {args.seed} (x{args.seeds}), profiles {', '.join(args.profiles)}, "
          f"{args.orders} orders, concurrency {args.concurrency}; {shapes}", flush=True)
    errors: list[dict[str, Any]] = []
    started = time.monotonic()
    results = asyncio.run(run_all(args, errors))
    print()
    print_table(results)
    print_failures(results)
    for error in errors:
        print(f"ERROR [{error['profile']} seed {error['seed']} {error['replicas']}/{error['db']}]: "
              f"{error['error'][:500]}")
    if args.json:
        write_json(args, results, errors)
        print(f"report: {args.json}")
    total = sum(len(r.result.violations) for r in results)
    by_invariant = " ".join(f"{k}={n}" for k, n in violations_by_invariant(results).items())
    print(f"\nviolations by invariant: {by_invariant}")
    print(f"{len(results)} run(s), {sum(len(r.observation.orders) for r in results)} orders, "
          f"{total} violation(s), {len(errors)} run(s) that could not run; seed {args.seed}; "
          f"{time.monotonic() - started:.0f}s")
    return 1 if total or errors else 0
