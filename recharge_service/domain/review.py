"""When an order the sentinel cannot decide goes to MANUAL_REVIEW. Pure Python.

An order still undecided after ``max_attempts`` undecided processing visits (the notify path's and
the sentinel's), or still open ``max_age`` after it was created, goes to MANUAL_REVIEW with the
reason. Visits that only wait (for the customer to pay, for WeChat to finish an accepted refund)
are not attempts; the age limit still applies to them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rc_common.clock import duration
from recharge_service.domain.order import SENTINEL_STATES, RechargeOrder


def review_reason(
    order: RechargeOrder, now: datetime, *, max_attempts: int, max_age: timedelta, undecided: bool
) -> str:
    """Why ``order`` must go to MANUAL_REVIEW now, or '' when it may wait for another visit."""
    if order.status not in SENTINEL_STATES:
        return ""
    last = f"; last error: {order.last_error}" if order.last_error else ""
    if undecided and order.attempts >= max_attempts:
        tried = f"{order.attempts} undecided attempts (max {max_attempts})"
        return f"still {order.status.name} after {tried}{last}"
    age = now - order.created_at
    if age >= max_age:
        return f"still {order.status.name} {duration(age)} after creation (max age {duration(max_age)}){last}"
    return ""
