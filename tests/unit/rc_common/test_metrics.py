"""rc_common.metrics without a server: the reconciliation gauge's small API and its retention."""

from __future__ import annotations

from rc_common.metrics import RECONCILIATION_DAYS_KEPT, Metrics


def days_exported(metrics: Metrics) -> dict[tuple[str, str], float]:
    family = metrics.reconciliation.collect()[0]
    return {(s.labels["business_date"], s.labels["category"]): s.value for s in family.samples}


def test_set_reconciliation_sets_one_series_per_day_and_category_and_a_rerun_overwrites_it() -> None:
    metrics = Metrics()
    metrics.set_reconciliation("2026-11-29", "PAID_NOT_CREDITED", 2)
    metrics.set_reconciliation("2026-11-29", "AMOUNT_MISMATCH", 1)
    metrics.set_reconciliation("2026-11-29", "PAID_NOT_CREDITED", 0)  # the re-run found it settled
    assert days_exported(metrics) == {
        ("2026-11-29", "PAID_NOT_CREDITED"): 0,
        ("2026-11-29", "AMOUNT_MISMATCH"): 1,
    }


def test_only_the_latest_days_stay_exported() -> None:
    metrics = Metrics()
    days = [f"2026-11-{day:02d}" for day in range(1, RECONCILIATION_DAYS_KEPT + 3)]
    for day in days:
        metrics.set_reconciliation(day, "PAID_NOT_CREDITED", 1)
    assert {day for day, _ in days_exported(metrics)} == set(days[-RECONCILIATION_DAYS_KEPT:])
