"""`scripts/bench.py --quick` runs the whole bench in seconds and writes its JSON and PNG.

No timing is asserted: only that every figure the report promises is there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_a_quick_bench_writes_the_table_json_and_plot(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "scripts/bench.py", "--quick", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "top-ups/s" in done.stdout and "goals:" in done.stdout
    report = json.loads((tmp_path / "bench.json").read_text())
    assert {"machine", "levels", "peak", "half_peak", "sentinel", "rss_mb", "goals"} <= set(report)
    assert [level["concurrency"] for level in report["levels"]] == [1, 4]
    for level in report["levels"]:
        assert level["service"]["completed"] > 0
        assert set(level["service"]["create_ms"]) == {"p50", "p95", "p99"}
        assert set(level["service"]["pay_to_credited_ms"]) == {"p50", "p95", "p99"}
        assert level["bare"]["completed"] > 0 and level["ratio"] is not None
    assert set(report["rss_mb"]) == {"card", "recharge", "wechat"}
    assert "per_s" in report["sentinel"] or "skipped" in report["sentinel"]
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
