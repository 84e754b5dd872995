"""The reconciliation's counts, for metrics: the last counts per (day, merchant), and the
``rc_reconciliation_differences{business_date, category}`` gauge (``rc_common.metrics``) summed over
the day's merchants.

:func:`record_reconciliation` is called after every stored run. Every category is set, zeros
included, so a re-run that finds a difference settled clears its alert; ``PENDING`` is not a
difference and is not exported."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from rc_common import metrics
from recharge_service.domain.reconciliation import Category

_lock = threading.Lock()
_last: dict[tuple[str, str], dict[str, int]] = {}


def record_reconciliation(date: str, merchant_id: str, counts: Mapping[str, int]) -> None:
    """Keep ``counts`` (items per category) as the latest for ``(date, merchant_id)`` and export
    the day's differences per category."""
    with _lock:
        _last[(date, merchant_id)] = dict(counts)
        totals: dict[str, int] = {}
        for (day, _merchant), per in _last.items():
            if day == date:
                for category, count in per.items():
                    totals[category] = totals.get(category, 0) + count
    for category, count in sorted(totals.items()):
        if category != Category.PENDING.value:
            metrics.set_reconciliation(date, category, count)


def last_counts() -> dict[tuple[str, str], dict[str, int]]:
    """A copy of the latest counts per ``(date, merchant_id)``."""
    with _lock:
        return {key: dict(value) for key, value in _last.items()}
