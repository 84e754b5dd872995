"""Input rules of WeChat Pay APIv3 (the fields the simulator checks), raising InvalidArgument."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from urllib.parse import urlsplit

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


#: The width of the notify_url columns.
NOTIFY_URL_MAX = 256


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP address (where plain HTTP is allowed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def notify_url(value: str, field: str = "notify_url") -> str:
    """'' (none: the gRPC --notify-target), an ``https://`` URL, or ``http://`` to a loopback
    host only (WeChat itself posts to https only); at most 256 characters, no query string."""
    if not value:
        return value
    if len(value) > NOTIFY_URL_MAX:
        raise InvalidArgument(field, f"at most {NOTIFY_URL_MAX} characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError as exc:
        raise InvalidArgument(field, f"not a URL: {exc}") from exc
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidArgument(field, "must be an https:// URL")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise InvalidArgument(field, "plain http:// only to a loopback host; use https://")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidArgument(field, "must carry no query, fragment or credentials")
    return value
