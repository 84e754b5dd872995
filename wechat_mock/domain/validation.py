"""Input rules of WeChat Pay APIv3 (the fields the simulator checks), raising InvalidArgument."""

from __future__ import annotations

import re
from datetime import datetime

from rc_common.errors import InvalidArgument
from wechat_mock.domain.times import parse_time

#: out_trade_no: 6-32 of [0-9A-Za-z_-|*]; out_refund_no: 1-64 of the same set.
OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
OUT_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-|*]{1,64}$")


def out_trade_no(value: str, field: str = "out_trade_no") -> str:
    if not OUT_TRADE_NO.match(value):
        raise InvalidArgument(field, "must be 6-32 characters of 0-9 A-Z a-z _ - | *")
    return value


def out_refund_no(value: str, field: str = "out_refund_no") -> str:
    if not OUT_REFUND_NO.match(value):
        raise InvalidArgument(field, "must be 1-64 characters of 0-9 A-Z a-z _ - | *")
    return value


def positive_fen(value: int, field: str) -> int:
    if value < 1:
        raise InvalidArgument(field, "must be at least 1 fen")
    return value


def optional_time(value: str, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidArgument(field, str(exc)) from exc


def required(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(field, "required")
    return value
