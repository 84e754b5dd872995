"""`python -m scripts.bench --metrics both` (what `make bench` runs) reports throughput with the
services' metrics on and off, level by level. No timing is asserted: only that both runs happened
and the difference is reported (the goal, < 5 %, is read by people, on a quiet machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.test_bench_quick import run_quick


@pytest.mark.long  # two quick benches (~2 min): in `make test-long`; `make bench` runs this mode itself
@pytest.mark.timeout(300)
def test_the_bench_reports_throughput_with_metrics_on_and_off(tmp_path: Path) -> None:
    stdout, report = run_quick(tmp_path, "--skip-bare", "--backlog", "0", "--metrics", "both")
    cost = report["metrics_cost"]
    assert [row["concurrency"] for row in cost["levels"]] == [1, 4]
    for row in cost["levels"]:
        assert row["on_topups_per_s"] > 0 and row["off_topups_per_s"] > 0
        assert row["difference_pct"] is not None
    assert cost["peak_difference_pct"] is not None
    assert "metrics cost (sustained top-ups/s, metrics on vs off" in stdout
    assert "peak   on" in stdout
