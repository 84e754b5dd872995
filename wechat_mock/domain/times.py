"""WeChat's times: RFC 3339 with the +08:00 offset (Asia/Shanghai has no daylight saving)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from rc_common.clock import CHINA, rfc3339_china
from rc_common.validation import MAX_YEAR, MIN_YEAR, check_moment, in_year_range

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_BILL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def format_time(moment: datetime | None) -> str:
    """``2026-11-26T12:00:00+08:00`` (seconds precision, as WeChat), or '' for None."""
    return "" if moment is None else rfc3339_china(moment)


def parse_time(text: str) -> datetime:
    """An RFC 3339 date-time (offset required); ValueError otherwise."""
    if not _RFC3339.match(text):
        raise ValueError("must be an RFC 3339 date-time such as 2026-11-26T12:00:00+08:00")
    cleaned = text.replace("z", "Z").replace("t", "T")
    fraction = re.search(r"\.(\d+)", cleaned)
    if fraction and len(fraction.group(1)) > 6:  # Python keeps microseconds only
        cleaned = cleaned.replace(fraction.group(0), "." + fraction.group(1)[:6])
    return check_moment(datetime.fromisoformat(cleaned))


def parse_bill_date(text: str) -> date:
    if not _BILL_DATE.match(text):
        raise ValueError("must be YYYY-MM-DD")
    day = date.fromisoformat(text)
    if not in_year_range(day):
        raise ValueError(f"year must be between {MIN_YEAR} and {MAX_YEAR}")
    return day


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The [start, end) instants of a calendar day in Shanghai time, in UTC."""
    start = datetime(day.year, day.month, day.day, tzinfo=CHINA)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def shanghai_date(moment: datetime) -> date:
    return moment.astimezone(CHINA).date()
