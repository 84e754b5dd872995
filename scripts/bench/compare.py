"""``--compare``: the same load on SQLite (1 replica), PostgreSQL (1) and PostgreSQL (N replicas) in
one invocation, side by side, beside one bare chain.

Absolute figures drift 2-4x between runs on a shared machine, so the table is read across one run:
top-ups per second and their ratio to the bare chain at each level, each run's peak against SQLite's,
CreateRechargeOrder p99, the write path's structure (write transactions / commits / statements per
top-up) and CPU per top-up, both taken at the highest level — the same load for every column. A
service run as replicas shows their sums (each replica's own in bench.json). CPU counts the
PostgreSQL server (SQLite runs inside the services) and the load generator too: on a small machine
they all share the same cores; the cores other work kept busy meanwhile show whether a run competed
with something else. Each run's full report (as a single run writes it, goals included) is kept
under ``runs`` in bench.json.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from scripts.bench.load import LoadResult
from scripts.bench.procs import LOAD, split_busy
from scripts.bench.report import SERVICES

Row = tuple[str, list[str]]
#: The database server's process tree (PostgreSQL) in the CPU figures (CpuMeter.trees).
DATABASE = "postgres"
#: CPU rows of the table: name in cpu_ms_per_topup, title.
CPU_ROWS = (
    ("card", "card"),
    ("recharge", "recharge"),
    ("wechat", "wechat"),
    (DATABASE, "PostgreSQL server"),
    (LOAD, "load generator"),
)


def label(report: dict[str, Any]) -> str:
    """``SQLite x1``, ``PostgreSQL x2``: the database and the recharge center's replicas."""
    kind = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[report["settings"]["db"]]
    return f"{kind} x{report['settings']['replicas']}"


def compare_report(
    runs: list[dict[str, Any]], bare: list[LoadResult], bare_rss: dict[str, float], seconds: float
) -> dict[str, Any]:
    settings = {k: v for k, v in runs[0]["settings"].items() if k not in ("db", "database", "replicas")}
    report: dict[str, Any] = {
        "mode": "compare",
        "machine": runs[0]["machine"],
        "settings": {**settings, "runs": [label(r) for r in runs]},
        "bare": {"levels": [b.summary() for b in bare], "rss_mb": bare_rss},
        "runs": [{"label": label(r), **r} for r in runs],
        "seconds": seconds,
    }
    report["table"] = [{"metric": metric, "values": values} for metric, values in table_rows(report)]
    return report


def _num(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _at(run: dict[str, Any], concurrency: int) -> dict[str, Any] | None:
    """A run's summary of the closed loop at ``concurrency``."""
    level = next((lv for lv in run["levels"] if lv["concurrency"] == concurrency), None)
    return level["service"] if level else None


def _ratio_at(run: dict[str, Any], concurrency: int) -> float | None:
    level = next((lv for lv in run["levels"] if lv["concurrency"] == concurrency), None)
    return level["ratio"] if level else None


def _bare_at(bare: list[dict[str, Any]], concurrency: int) -> dict[str, Any] | None:
    return next((b for b in bare if b["concurrency"] == concurrency), None)


def _structure(summary: dict[str, Any] | None, name: str) -> str:
    row = ((summary or {}).get("db") or {}).get(name)
    if not row:
        return "-"
    return f"{row['units_per_topup']:.2f}/{row['commits_per_topup']:.2f}/{row['statements_per_topup']:.1f}"


def _cores(summary: dict[str, Any] | None, groups: Iterable[str]) -> str:
    """Cores busy during the load: services and database server + load generator + other work."""
    if summary is None:
        return "-"
    ours, load, others = split_busy(summary.get("cpu_busy") or {}, groups)
    return f"{ours:.2f} + {load:.2f}" + ("" if others is None else f" + {others:.2f}")


def table_rows(report: dict[str, Any]) -> list[Row]:
    """The side-by-side table: a metric per row, the bare chain then each run per column."""
    return _throughput_rows(report) + _latency_rows(report) + _cost_rows(report) + _health_rows(report)


def _throughput_rows(report: dict[str, Any]) -> list[Row]:
    runs, bare = report["runs"], report["bare"]["levels"]
    levels = report["settings"]["levels"]
    rows: list[Row] = []
    for c in levels:
        b = _bare_at(bare, c)
        rows.append(
            (
                f"top-ups/s at c={c} (sustained)",
                [_num(b["sustained_topups_per_s"] if b else None)]
                + [_num(s["sustained_topups_per_s"] if (s := _at(r, c)) else None) for r in runs],
            )
        )
    for c in levels:
        rows.append((f"  ratio to bare at c={c}", ["", *(_num(_ratio_at(r, c), ".3f") for r in runs)]))
    bare_peak = max(bare, key=lambda b: b["sustained_topups_per_s"]) if bare else None
    rows.append(
        (
            "peak top-ups/s (at c)",
            [f"{bare_peak['sustained_topups_per_s']:.1f} ({bare_peak['concurrency']})" if bare_peak else "-"]
            + [f"{r['peak']['topups_per_s']:.1f} ({r['peak']['at_concurrency']})" for r in runs],
        )
    )
    rows.append(("  peak ratio to bare peak", ["", *(_num(r["peak"]["ratio_to_bare"], ".3f") for r in runs)]))
    first = runs[0]["peak"]["topups_per_s"]
    rows.append(
        (
            f"  peak vs {runs[0]['label']}",
            ["", *(_num(r["peak"]["topups_per_s"] / first if first else None, ".2f") for r in runs)],
        )
    )
    return rows


def _latency_rows(report: dict[str, Any]) -> list[Row]:
    runs, bare = report["runs"], report["bare"]["levels"]
    levels = report["settings"]["levels"]
    rows: list[Row] = []
    for c in levels:
        b = _bare_at(bare, c)
        rows.append(
            (
                f"create p99 ms at c={c}",
                [_num(b["create_ms"]["p99"] if b else None)]
                + [_num(s["create_ms"]["p99"] if (s := _at(r, c)) else None) for r in runs],
            )
        )
    half = [r["half_peak"] for r in runs]
    rows.append(
        (
            "create p99 ms at half of peak (offered/s)",
            ["", *(f"{h['create_ms']['p99']:.1f} ({h['offered_rate_per_s']:.0f})" for h in half)],
        )
    )
    top = max(levels)
    rows.append(
        (
            f"pay->credited p99 ms at c={top}",
            ["", *(_num(s["pay_to_credited_ms"]["p99"] if (s := _at(r, top)) else None) for r in runs)],
        )
    )
    return rows


def _cost_rows(report: dict[str, Any]) -> list[Row]:
    """Structure and CPU per top-up, at the highest level (the same load in every column)."""
    runs = report["runs"]
    top = max(report["settings"]["levels"])
    at_top = [_at(r, top) for r in runs]
    rows: list[Row] = [
        (f"{name} units/commits/stmts per top-up, c={top}", ["", *(_structure(s, name) for s in at_top)])
        for name in SERVICES
    ]
    for run, summary in zip(runs, at_top, strict=True):
        replicas = ((summary or {}).get("db") or {}).get("recharge", {}).get("replicas")
        if replicas:
            split = " + ".join(f"{v['units_per_topup']:.2f}" for v in replicas.values())
            cells = [split if r is run else "" for r in runs]
            rows.append((f"  recharge units by replica ({run['label']})", ["", *cells]))
    bare = _bare_at(report["bare"]["levels"], top)
    for name, title in CPU_ROWS:
        rows.append(
            (
                f"CPU ms per top-up, {title}, c={top}",
                [_num(bare["cpu_ms_per_topup"].get(name) if bare else None)]
                + [_num(s["cpu_ms_per_topup"].get(name) if s else None) for s in at_top],
            )
        )
    served = [*SERVICES, DATABASE]
    totals = [sum(s["cpu_ms_per_topup"].get(n, 0.0) for n in served) if s else None for s in (bare, *at_top)]
    rows.append((f"CPU ms per top-up, services + database, c={top}", [_num(t) for t in totals]))
    cores = [_cores(s, r.get("groups") or {}) for s, r in zip(at_top, runs, strict=True)]
    rows.append((f"cores busy at c={top}: ours + load + other work", [_cores(bare, ()), *cores]))
    return rows


def _health_rows(report: dict[str, Any]) -> list[Row]:
    runs = report["runs"]
    return [
        ("peak RSS MB recharge (per replica)", ["", *(_rss(r, "recharge") for r in runs)]),
        ("peak RSS MB card / wechat", ["", *(f"{_rss(r, 'card')} / {_rss(r, 'wechat')}" for r in runs)]),
        ("failed top-ups (all loads)", ["", *(str(_failed(r)) for r in runs)]),
        ("orders not CREDITED at the end", ["", *(_dict(r.get("not_credited")) for r in runs)]),
        (
            "log events at warning or above",
            ["", *(str(sum(sum(c.values()) for c in (r.get("log_problems") or {}).values())) for r in runs)],
        ),
    ]


def _rss(run: dict[str, Any], name: str) -> str:
    members = (run.get("groups") or {}).get(name, [name])
    return "/".join(_num(run["rss_mb"].get(m), ".0f") for m in members)


def _failed(run: dict[str, Any]) -> int:
    return int(sum(lv["service"]["failed"] for lv in run["levels"]) + run["half_peak"]["failed"])


def _dict(values: dict[str, int] | None) -> str:
    if values is None:
        return "-"
    return ", ".join(f"{k} {v}" for k, v in values.items()) or "none"


def print_compare(report: dict[str, Any]) -> None:
    runs = report["runs"]
    settings = report["settings"]
    print(
        f"same load on {len(runs)} set-ups, one run ({report['machine']['cpus']} cpus; levels "
        f"{settings['levels']}, {settings['duration_s']} s each; {report['seconds']} s in all)\n"
    )
    heads = ["bare chain", *(r["label"] for r in runs)]
    width = max(len(metric) for metric, _ in ((row["metric"], 0) for row in report["table"]))
    cols = [max(12, len(h), *(len(row["values"][i]) for row in report["table"])) for i, h in enumerate(heads)]
    head = f"{'':<{width}}  " + "  ".join(f"{h:>{w}}" for h, w in zip(heads, cols, strict=True))
    print(head)
    print("-" * len(head))
    for row in report["table"]:
        cells = "  ".join(f"{v:>{w}}" for v, w in zip(row["values"], cols, strict=True))
        print(f"{row['metric']:<{width}}  {cells}")
    print(
        "\nunits = write transactions (outbox deliveries apart), commits = physical COMMITs, stmts = SQL "
        "statements, per completed top-up; a service run as replicas: their sums. Cores busy: the "
        "services and database server + the load generator + other work on the machine (not this "
        "bench's: a run that competed with it reads low). Ratios and 'peak vs' come from this one run: "
        "read them, not absolute figures of different runs."
    )
    for run in runs:
        notes = [n for n in run["notes"] if "replicas on one database" in n or "PostgreSQL as" in n]
        for note in notes:
            print(f"note ({run['label']}): {note}")
        if run.get("log_problems"):
            print(f"log events ({run['label']}): {run['log_problems']}")
        errors = sorted({e for lv in run["levels"] for e in lv["service"]["errors"]})
        if errors:
            print(f"errors ({run['label']}): {errors[:5]}")


def plot_compare(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = report["settings"]["levels"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    bare = report["bare"]["levels"]
    if bare:
        x = [b["concurrency"] for b in bare]
        left.plot(x, [b["sustained_topups_per_s"] for b in bare], "s--", label="bare chain")
    for run in report["runs"]:
        x = [lv["concurrency"] for lv in run["levels"]]
        served = [lv["service"] for lv in run["levels"]]
        left.plot(x, [s["sustained_topups_per_s"] for s in served], "o-", label=run["label"])
        right.plot(x, [s["create_ms"]["p99"] for s in served], "o-", label=run["label"])
    left.set(xscale="log", xlabel="concurrency", ylabel="top-ups per second (sustained)", title="throughput")
    right.set(xscale="log", yscale="log", xlabel="concurrency", ylabel="ms", title="CreateRechargeOrder p99")
    for axis in (left, right):
        axis.set_xticks(levels, [str(v) for v in levels])
        axis.minorticks_off()
        axis.legend()
    fig.suptitle(f"SQLite vs PostgreSQL, 1 and more replicas ({report['machine']['cpus']} cpus, one run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
