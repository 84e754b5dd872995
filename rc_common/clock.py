"""Time as the services tell it: now in UTC, China time (UTC+8) for what people and WeChat read,
and durations as an operator would say them. Pure Python.

China has one zone, Asia/Shanghai, with no daylight saving, so a fixed +08:00 offset is exact.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
_RNG = random.Random()  # backoff jitter


def utc_now() -> datetime:
    """The default clock of every service (tests pass their own)."""
    return datetime.now(UTC)


def rfc3339_china(moment: datetime) -> str:
    """``2026-11-26T12:00:00+08:00``: seconds precision with the +08:00 offset, as WeChat writes
    times (a naive ``moment`` is taken as local time, as ``astimezone`` does)."""
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def duration(delta: timedelta) -> str:
    """``2h05m``, ``3m07s``, ``12s`` (whole seconds; a negative span reads ``0s``)."""
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def backoff(attempt: int, first: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): ``first * 2**(attempt-1)``,
    capped, with "equal jitter" (half fixed, half random) so retries of many orders spread out."""
    base = min(first * 2 ** (attempt - 1), cap)
    return float(base / 2 + (rng or _RNG).uniform(0, base / 2))
