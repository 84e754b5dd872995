"""China time and durations, told the same way by every service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rc_common.clock import CHINA, duration, rfc3339_china, utc_now


def test_now_is_an_aware_utc_time() -> None:
    assert utc_now().utcoffset() == timedelta(0)


def test_china_time_is_utc_plus_eight_to_the_second() -> None:
    moment = datetime(2026, 11, 26, 16, 30, 5, 999_999, tzinfo=UTC)
    assert rfc3339_china(moment) == "2026-11-27T00:30:05+08:00"
    assert moment.astimezone(CHINA).hour == 0


def test_durations_read_like_an_operator_would_say_them() -> None:
    spans = (0, 12, 59, 61, 187, 7500, 3600 * 26 + 120, -5)
    assert [duration(timedelta(seconds=s)) for s in spans] == [
        "0s", "12s", "59s", "1m01s", "3m07s", "2h05m", "26h02m", "0s"
    ]
