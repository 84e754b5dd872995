"""The bench's table, goals and plot (matplotlib with the Agg backend: no display needed).

The goals are issue 10's, for this machine with everything on it. They are reported (met / NOT
met / not measured), never asserted: a goal the run could not measure says so and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from scripts.bench.procs import split_busy

#: The real stack at its peak as a share of the bare chain at its peak, in the same run.
GOAL_RATIO = 0.25
#: Where the compass points (shown next to the goal, not judged).
COMPASS_RATIO = 0.5
GOAL_CREATE_P99_MS = 50.0
GOAL_BACKLOG = 10_000
GOAL_BACKLOG_S = 30.0
#: Write transactions (units of work) per top-up in the recharge center.
GOAL_RECHARGE_UNITS = 4.0
#: Write transactions per call in each simulator.
GOAL_SIMULATOR_UNITS_PER_CALL = 2.0
GOAL_RSS_MB = 200.0
SERVICES = ("card", "recharge", "wechat")


def _goal(goal: str, target: str, measured: Any, met: bool | None, note: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {"goal": goal, "target": target, "measured": measured, "met": met}
    if note:
        entry["note"] = note
    return entry


def evaluate_goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    peak = report["peak"]
    goals: list[dict[str, Any]] = []
    ratio = peak["ratio_to_bare"]
    goals.append(
        _goal(
            "real stack / bare chain, each at its peak (same run)",
            f">= {GOAL_RATIO}",
            ratio,
            None if ratio is None else ratio >= GOAL_RATIO,
            f"{peak['topups_per_s']}/s at concurrency {peak['at_concurrency']} vs bare "
            f"{peak['bare_topups_per_s']}/s at {peak['bare_at_concurrency']}; compass {COMPASS_RATIO}"
            if ratio is not None
            else "bare chain not run (--skip-bare)",
        )
    )
    half = report["half_peak"]
    p99 = half["create_ms"]["p99"]
    goals.append(
        _goal(
            "CreateRechargeOrder p99 at half of peak (ms)",
            f"<= {GOAL_CREATE_P99_MS:.0f}",
            p99 if half["completed"] else None,
            p99 <= GOAL_CREATE_P99_MS if half["completed"] else None,
            f"{half['offered_rate_per_s']}/s offered" if half["completed"] else "no top-up completed",
        )
    )
    goals.append(_sentinel_goal(report["sentinel"]))
    goals += _db_goals(peak)
    groups = report.get("groups") or {}
    for name in SERVICES:
        members = groups.get(name, [name])
        sampled = {m: report["rss_mb"][m] for m in members if m in report["rss_mb"]}
        mb = max(sampled.values()) if sampled else None
        note = "not sampled" if mb is None else ""
        if mb is not None and len(members) > 1:
            note = "the largest replica: " + ", ".join(f"{m} {v}" for m, v in sampled.items())
        met = None if mb is None else mb <= GOAL_RSS_MB
        goals.append(_goal(f"peak RSS {name} (MB)", f"<= {GOAL_RSS_MB:.0f}", mb, met, note))
    return goals


def _sentinel_goal(sentinel: dict[str, Any]) -> dict[str, Any]:
    name = f"{GOAL_BACKLOG} stuck orders resolved by the sentinel (s)"
    target = f"<= {GOAL_BACKLOG_S:.0f}"
    if "skipped" in sentinel:
        return _goal(name, target, None, None, f"skipped: {sentinel['skipped']}")
    if sentinel["orders"] >= GOAL_BACKLOG:
        return _goal(
            name,
            target,
            sentinel["seconds"],
            sentinel["seconds"] <= GOAL_BACKLOG_S and not sentinel["left"],
            f"{sentinel['resolved']}/{sentinel['orders']} resolved, {sentinel['left']} left",
        )
    projected = round(GOAL_BACKLOG / sentinel["per_s"], 1) if sentinel.get("per_s") else None
    return _goal(
        name,
        target,
        None,
        None,
        f"backlog was {sentinel['orders']} (run --backlog {GOAL_BACKLOG}); "
        f"{sentinel.get('per_s')}/s would take {projected} s",
    )


def _db_goals(peak: dict[str, Any]) -> list[dict[str, Any]]:
    db = {name: row for name, row in (peak.get("db") or {}).items() if row.get("counted")}
    at = f"at peak (concurrency {peak['at_concurrency']})"
    recharge = db.get("recharge")
    goals = [
        _goal(
            "recharge center write transactions per top-up",
            f"<= {GOAL_RECHARGE_UNITS:.0f}",
            recharge["units_per_topup"] if recharge else None,
            recharge["units_per_topup"] <= GOAL_RECHARGE_UNITS if recharge else None,
            f"{at}; outbox delivery excluded: +{recharge['outbox_units_per_topup']} per top-up"
            if recharge
            else "no write units counted in recharge (see notes)",
        )
    ]
    for name in ("card", "wechat"):
        row = db.get(name)
        goals.append(
            _goal(
                f"{name} write transactions per call",
                f"<= {GOAL_SIMULATOR_UNITS_PER_CALL:.0f}",
                row["units_per_call"] if row else None,
                row["units_per_call"] <= GOAL_SIMULATOR_UNITS_PER_CALL if row else None,
                f"{at}; {row['units_per_topup']} per top-up / {row['calls_per_topup']} calls"
                if row
                else f"no write units counted in {name} (see notes)",
            )
        )
    return goals


def _pcts(stats: dict[str, float]) -> str:
    return f"{stats['p50']:.1f}/{stats['p95']:.1f}/{stats['p99']:.1f}"


def _fmt(value: Any, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_db_table(rows: list[tuple[str, dict[str, Any]]]) -> None:
    """Per load and service: CPU and database work per top-up; a service run as replicas: their sum,
    then each replica's own (its work per top-up of the whole load)."""
    head = (
        f"{'load':>8} {'service':>9} {'CPU ms':>8} {'units':>7} {'commits':>8} {'stmts':>7} "
        f"{'reads':>7} {'units/commit':>13} {'calls':>6} {'units/call':>11} {'failed units':>13}"
    )
    print(head)
    print("-" * len(head))
    for load, summary in rows:
        db = summary.get("db") or {}
        for name in SERVICES:
            row = db.get(name)
            cpu = summary["cpu_ms_per_topup"].get(name)
            if row is None:
                print(f"{load:>8} {name:>9} {_fmt(cpu, '.1f'):>8} {'(no database counters)':>32}")
                continue
            print(
                f"{load:>8} {name:>9} {_fmt(cpu, '.1f'):>8} {row['units_per_topup']:>7.2f} "
                f"{row['commits_per_topup']:>8.2f} {row['statements_per_topup']:>7.1f} "
                f"{row['reads_per_topup']:>7.2f} {_fmt(row['units_per_commit']):>13} "
                f"{_fmt(row.get('calls_per_topup'), '.1f'):>6} {_fmt(row.get('units_per_call')):>11} "
                f"{row['failed_units']:>13}" + ("" if row["counted"] else "  (not counted: see notes)")
            )
            for replica, own in (row.get("replicas") or {}).items():
                cpu = summary["cpu_ms_per_topup"].get(replica)
                print(
                    f"{'':>8} {'- ' + replica:>9} {_fmt(cpu, '.1f'):>8} {own['units_per_topup']:>7.2f} "
                    f"{own['commits_per_topup']:>8.2f} {own['statements_per_topup']:>7.1f} "
                    f"{own['reads_per_topup']:>7.2f} {_fmt(own['units_per_commit']):>13} "
                    f"{'':>6} {'':>11} {own['failed_units']:>13}"
                )


def print_outside_cpu(rows: list[tuple[str, dict[str, Any]]], groups: Iterable[str] = ()) -> None:
    """CPU per top-up spent outside the services — the database server (PostgreSQL; SQLite runs in
    the services) and the load generator, which share the machine's cores with them — and the cores
    other work on the machine kept busy meanwhile (a run that competed with it reads low)."""
    outside = []
    for load, summary in rows:
        cpu, busy = summary["cpu_ms_per_topup"], summary.get("cpu_busy") or {}
        figures = [f"{name} {cpu[name]:.1f} ms" for name in ("postgres", "load") if name in cpu]
        others = split_busy(busy, groups)[2]
        if others is not None:
            figures.append(f"other work on the machine {others:.2f} cores")
        if figures:
            outside.append(f"{load} " + ", ".join(figures))
    if outside:
        print("outside the services, per top-up (database server, load generator):", "; ".join(outside))


def _print_merchants(report: dict[str, Any]) -> None:
    """Which merchants the load was spread over, and how many top-ups each completed per level."""
    merchants = report["settings"].get("merchants") or {}
    if not merchants:
        return
    split = "; ".join(
        f"c={level['concurrency']} "
        + "/".join(str(level["service"].get("completed_by_merchant", {}).get(m, 0)) for m in merchants)
        for level in report["levels"]
    )
    names = ", ".join(f"{m} ({mode})" for m, mode in merchants.items())
    print(f"\ntop-ups completed per merchant ({names}): {split}")


def print_table(report: dict[str, Any]) -> None:
    groups = report.get("groups") or {}
    replicas = f", recharge center: {len(groups['recharge'])} replicas" if "recharge" in groups else ""
    print(f"services on {report['settings'].get('database') or report['settings'].get('db')}{replicas}\n")
    head = (
        f"{'conc':>5} {'top-ups/s':>10} {'sustained':>10} {'bare/s':>8} {'ratio':>6}  "
        f"{'create ms p50/p95/p99':>24}  {'pay->credited ms p50/p95/p99':>30} {'failed':>7}"
    )
    print(head)
    print("-" * len(head))
    for level in report["levels"]:
        s, b = level["service"], level["bare"]
        print(
            f"{level['concurrency']:>5} {s['topups_per_s']:>10.1f} {s['sustained_topups_per_s']:>10.1f} "
            f"{b['sustained_topups_per_s'] if b else '-':>8} "
            f"{level['ratio'] if level['ratio'] is not None else '-':>6}  {_pcts(s['create_ms']):>24}  "
            f"{_pcts(s['pay_to_credited_ms']):>30} {s['failed']:>7}"
        )
    _print_merchants(report)
    half = report["half_peak"]
    print(
        f"\nhalf of peak: {half['offered_rate_per_s']}/s offered, {half['topups_per_s']}/s done, "
        f"create ms {_pcts(half['create_ms'])}, pay->credited ms {_pcts(half['pay_to_credited_ms'])}"
    )
    print(
        "\nper top-up, per service (units = write transactions, commits = physical COMMITs, "
        "stmts = SQL statements,\ncalls = calls a top-up makes into the simulator, load c=N: "
        "closed loop at concurrency N, half: open loop at half of peak)"
    )
    loads = [(f"c={lv['concurrency']}", lv["service"]) for lv in report["levels"]] + [("half", half)]
    print_db_table(loads)
    print_outside_cpu(loads, groups)
    sentinel = report["sentinel"]
    if "skipped" in sentinel:
        print(f"sentinel backlog: skipped ({sentinel['skipped']})")
    else:
        print(
            f"sentinel backlog: {sentinel['resolved']}/{sentinel['orders']} resolved "
            f"in {sentinel['seconds']} s "
            f"({sentinel['per_s']}/s, {sentinel['runs']} runs), {sentinel['left']} left"
        )
        for name, row in (sentinel.get("db_per_order") or {}).items():
            print(
                f"  per resolved order, {name}: {row['units_per_topup']} units, "
                f"{row['commits_per_topup']} commits, {row['statements_per_topup']} statements"
            )
    print(f"peak RSS MB: {report['rss_mb']}   (bare chain: {report['bare_rss_mb']})")
    print_problems(report)
    print("\ngoals (issue 10; reported, never asserted):")
    for goal in report["goals"]:
        met = {True: "met", False: "NOT met", None: "not measured"}[goal["met"]]
        note = f"  ({goal['note']})" if goal.get("note") else ""
        measured = _fmt(goal["measured"], "") if goal["measured"] is not None else "-"
        print(f"  {goal['goal']:<52} {goal['target']:>8}  measured {measured:>7}  {met:<12}{note}")
    print(
        "\ntop-ups/s: closed loop, completed / time to the last credit; sustained: also counting the "
        "time the servers stayed busy afterwards (follow-ups); ratio and goals use sustained."
    )
    for note in report["notes"]:
        print(f"note: {note}")


def print_problems(report: dict[str, Any]) -> None:
    """What the services left or logged that the figures would hide: orders not CREDITED at the end,
    log events at warning or above (per process, by level:event)."""
    left = report.get("not_credited")
    if left is not None:
        print(f"orders not CREDITED at the end: {left or 'none'}")
    problems = report.get("log_problems")
    if problems is not None:
        print(f"log events at warning or above: {problems or 'none'}")


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = report["levels"]
    x = [lv["concurrency"] for lv in levels]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(x, [lv["service"]["sustained_topups_per_s"] for lv in levels], "o-", label="real services")
    bare = [lv["bare"]["sustained_topups_per_s"] if lv["bare"] else None for lv in levels]
    if any(b is not None for b in bare):
        left.plot(x, bare, "s--", label="bare chain (same hops, no work)")
    bare_peak = report["peak"]["bare_topups_per_s"]
    if bare_peak:
        goal = GOAL_RATIO * bare_peak
        left.axhline(
            goal, color="grey", lw=0.8, ls=":", label=f"goal {GOAL_RATIO} x bare peak = {goal:.0f}/s"
        )
    left.set(
        xscale="log",
        xlabel="concurrency (top-ups in flight)",
        ylabel="top-ups per second",
        title="throughput",
    )
    left.legend()
    right.plot(x, [lv["service"]["create_ms"]["p99"] for lv in levels], "o-", label="CreateRechargeOrder p99")
    right.plot(
        x, [lv["service"]["pay_to_credited_ms"]["p99"] for lv in levels], "^-", label="pay->CREDITED p99"
    )
    right.set(
        xscale="log", yscale="log", xlabel="concurrency (top-ups in flight)", ylabel="ms", title="p99 latency"
    )
    right.legend()
    for axis in (left, right):
        axis.set_xticks(x, [str(v) for v in x])
        axis.minorticks_off()
    fig.suptitle(
        f"recharge center bench ({report['machine']['cpus']} cpus, {report['settings'].get('db', 'sqlite')})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
