"""How the console writes money, times and statuses. Pure Python.

Money is integer fen shown as ``¥1,234.56`` (never through a float); times are China time with the
offset written out (``2026-11-30 20:56:55 +08:00``); a status is its enum name without the prefix,
which ``i18n`` turns into an operator's word.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from rc_common.clock import CHINA, duration
from recharge_service.domain.numbers import money as money  # the pages' filter (one formatter)


class Stamp(Protocol):
    """A ``google.protobuf.Timestamp`` (or anything with its two fields)."""

    @property
    def seconds(self) -> int: ...

    @property
    def nanos(self) -> int: ...


def moment(stamp: Stamp) -> datetime | None:
    if not stamp.seconds and not stamp.nanos:
        return None
    return (
        datetime.fromtimestamp(stamp.seconds, UTC).replace(microsecond=stamp.nanos // 1000).astimezone(CHINA)
    )


def when(stamp: Stamp, *, millis: bool = False) -> str:
    """``2026-11-30 20:56:55 +08:00`` (``.123`` before the offset with ``millis``); "" when unset."""
    at = moment(stamp)
    if at is None:
        return ""
    text = at.strftime("%Y-%m-%d %H:%M:%S")
    if millis:
        text += f".{at.microsecond // 1000:03d}"
    return f"{text} +08:00"


def age(seconds: int) -> str:
    """``2h05m``, ``3m07s``, ``12s``."""
    return duration(timedelta(seconds=seconds))


def enum_key(name: str, prefix: str) -> str:
    """``ORDER_STATUS_CREDIT_UNKNOWN`` -> ``CREDIT_UNKNOWN``."""
    return name.removeprefix(prefix)


def latency(ms: int) -> str:
    return f"{ms} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"
