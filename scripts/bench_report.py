"""The bench's table, goals and plot (matplotlib with the Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The goals of issue 7 for this machine (2 cores, everything on it).
GOAL_TPS = 300.0
GOAL_RATIO = 0.5
GOAL_CREATE_P99_MS = 50.0
GOAL_BACKLOG = 10_000
GOAL_BACKLOG_S = 30.0
GOAL_RSS_MB = 200.0


def evaluate_goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    peak = report["peak"]
    goals: list[dict[str, Any]] = [
        {
            "goal": "top-ups per second",
            "target": f">= {GOAL_TPS:.0f}",
            "measured": peak["topups_per_s"],
            "met": peak["topups_per_s"] >= GOAL_TPS,
        },
    ]
    if peak["ratio_to_bare"] is not None:
        goals.append(
            {
                "goal": "share of the bare chain",
                "target": f">= {GOAL_RATIO}",
                "measured": peak["ratio_to_bare"],
                "met": peak["ratio_to_bare"] >= GOAL_RATIO,
            }
        )
    p99 = report["half_peak"]["create_ms"]["p99"]
    goals.append(
        {
            "goal": "CreateRechargeOrder p99 at half of peak (ms)",
            "target": f"<= {GOAL_CREATE_P99_MS:.0f}",
            "measured": p99,
            "met": p99 <= GOAL_CREATE_P99_MS,
        }
    )
    sentinel = report["sentinel"]
    if sentinel.get("per_s"):
        projected = GOAL_BACKLOG / sentinel["per_s"]
        goals.append(
            {
                "goal": f"{GOAL_BACKLOG} stuck orders resolved (s, projected from "
                f"{sentinel['orders']} at {sentinel['per_s']}/s)",
                "target": f"<= {GOAL_BACKLOG_S:.0f}",
                "measured": round(projected, 1),
                "met": projected <= GOAL_BACKLOG_S and not sentinel["left"],
            }
        )
    else:
        goals.append(
            {
                "goal": "stuck orders resolved",
                "target": f"{GOAL_BACKLOG} in <= {GOAL_BACKLOG_S:.0f} s",
                "measured": None,
                "met": None,
                "note": sentinel.get("skipped", ""),
            }
        )
    for name, mb in report["rss_mb"].items():
        goals.append(
            {
                "goal": f"peak RSS {name} (MB)",
                "target": f"<= {GOAL_RSS_MB:.0f}",
                "measured": mb,
                "met": mb <= GOAL_RSS_MB,
            }
        )
    return goals


def _pcts(stats: dict[str, float]) -> str:
    return f"{stats['p50']:.1f}/{stats['p95']:.1f}/{stats['p99']:.1f}"


def print_table(report: dict[str, Any]) -> None:
    head = (
        f"{'conc':>5} {'top-ups/s':>10} {'bare/s':>8} {'ratio':>6}  {'create ms p50/p95/p99':>24}  "
        f"{'pay->credited ms p50/p95/p99':>30} {'failed':>7}"
    )
    print(head)
    print("-" * len(head))
    for level in report["levels"]:
        s, b = level["service"], level["bare"]
        print(
            f"{level['concurrency']:>5} {s['topups_per_s']:>10.1f} {b['topups_per_s'] if b else '-':>8} "
            f"{level['ratio'] if level['ratio'] is not None else '-':>6}  {_pcts(s['create_ms']):>24}  "
            f"{_pcts(s['pay_to_credited_ms']):>30} {s['failed']:>7}"
        )
    half = report["half_peak"]
    print(
        f"\nhalf of peak: {half['offered_rate_per_s']}/s offered, {half['topups_per_s']}/s done, "
        f"create ms {_pcts(half['create_ms'])}, pay->credited ms {_pcts(half['pay_to_credited_ms'])}"
    )
    sentinel = report["sentinel"]
    if "skipped" in sentinel:
        print(f"sentinel backlog: skipped ({sentinel['skipped']})")
    else:
        print(
            f"sentinel backlog: {sentinel['resolved']}/{sentinel['orders']} resolved "
            f"in {sentinel['seconds']} s "
            f"({sentinel['per_s']}/s, {sentinel['runs']} runs), {sentinel['left']} left"
        )
    print(f"peak RSS MB: {report['rss_mb']}   (bare chain: {report['bare_rss_mb']})")
    print("\ngoals:")
    for goal in report["goals"]:
        met = {True: "met", False: "NOT met", None: "not measured"}[goal["met"]]
        print(f"  {goal['goal']:<60} {goal['target']:>10}  measured {goal['measured']!s:>8}  {met}")
    for note in report["notes"]:
        print(f"note: {note}")


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = report["levels"]
    x = [lv["concurrency"] for lv in levels]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(x, [lv["service"]["topups_per_s"] for lv in levels], "o-", label="recharge center")
    bare = [lv["bare"]["topups_per_s"] if lv["bare"] else None for lv in levels]
    if any(b is not None for b in bare):
        left.plot(x, bare, "s--", label="bare chain (same hops, no work)")
    left.axhline(GOAL_TPS, color="grey", lw=0.8, ls=":", label=f"goal {GOAL_TPS:.0f}/s")
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
    fig.suptitle(f"recharge center bench ({report['machine']['cpus']} cpus)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
