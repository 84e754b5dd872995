"""Business days: a calendar day in +08:00 (China Standard Time, WeChat's bill day), as instants."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

from rc_common.validation import MAX_YEAR, MIN_YEAR, in_year_range

#: WeChat's and the merchants' day: UTC+08:00, no daylight saving.
BUSINESS_TZ = timezone(timedelta(hours=8), "CST")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` within the years every service accepts; ValueError otherwise."""
    if not _DATE.match(text):
        raise ValueError("must be YYYY-MM-DD")
    day = date.fromisoformat(text)
    if not in_year_range(day):
        raise ValueError(f"year must be between {MIN_YEAR} and {MAX_YEAR}")
    return day


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The [start, end) instants (UTC) of ``day`` in +08:00."""
    start = datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def business_date(moment: datetime) -> date:
    """The +08:00 calendar day ``moment`` falls on."""
    return moment.astimezone(BUSINESS_TZ).date()
