"""Money as ¥1,234.56 from fen (never through a float), times in +08:00, ages as an operator says them."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from recharge_service.console.formatting import age, latency, money, when


@pytest.mark.parametrize(
    ("fen", "shown"),
    [
        (0, "¥0.00"),
        (5, "¥0.05"),
        (100, "¥1.00"),
        (123456, "¥1,234.56"),
        (100_000_000_01, "¥100,000,000.01"),
        (-5, "-¥0.05"),
        (-123456, "-¥1,234.56"),
        (2**53 + 1, "¥90,071,992,547,409.93"),  # past a double's exact integers: still exact
    ],
)
def test_money_is_yuan_with_thousands_separators_from_integer_fen(fen: int, shown: str) -> None:
    assert money(fen) == shown


def test_times_are_china_time_with_the_offset_written_out() -> None:
    stamp = Timestamp(seconds=1_796_000_000, nanos=123_456_789)  # 2026-11-30T00:53:20.123Z
    assert when(stamp) == "2026-11-30 08:53:20 +08:00"
    assert when(stamp, millis=True) == "2026-11-30 08:53:20.123 +08:00"


def test_a_day_boundary_is_crossed_in_china_time_not_utc() -> None:
    stamp = Timestamp(seconds=1_796_054_400)  # 2026-11-30T16:00:00Z
    assert when(stamp) == "2026-12-01 00:00:00 +08:00"


def test_an_unset_time_is_shown_as_nothing() -> None:
    assert when(Timestamp()) == ""


@pytest.mark.parametrize(("seconds", "shown"), [(0, "0s"), (59, "59s"), (187, "3m07s"), (7500, "2h05m")])
def test_ages_read_like_an_operator_says_them(seconds: int, shown: str) -> None:
    assert age(seconds) == shown


def test_latency_is_milliseconds_until_ten_seconds() -> None:
    assert latency(7) == "7 ms"
    assert latency(12_345) == "12.3 s"
