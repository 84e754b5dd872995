"""The one validation layer every servicer uses: whatever a well-formed protobuf carries, the
answer is a value we can work with or ``InvalidArgument`` naming the field — never an exception
from deeper down (OverflowError, RecursionError, a database error) that a caller would see as
UNKNOWN.

The limits, and why:

* int64: protobuf hands us any int64; durations and positions are checked against what
  ``timedelta``/``datetime`` and the database hold (``MAX_SECONDS``: about 10,000 years would
  overflow ``datetime``, so a duration is capped at 100 years).
* enum values: proto3 enums are open, so ``kind: 99`` decodes; only the declared numbers pass.
* dates: years ``MIN_YEAR`` … ``MAX_YEAR`` (a date ± one day and ± any UTC offset stays in
  ``datetime``'s range, so "9999-12-31" or "0001-01-01T00:00:00+23:59" are refused, not crashed on).
* strings: ``MAX_TEXT`` characters unless a field says otherwise.
* JSON: at most ``MAX_JSON_DEPTH`` levels and ``MAX_JSON_BYTES`` bytes before ``json.loads`` runs
  (``"[" * 1000`` would otherwise raise RecursionError).
"""

from __future__ import annotations

import enum
import json
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from rc_common.errors import InvalidArgument

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
#: The longest duration any request may name (seconds): 100 years.
MAX_SECONDS = 100 * 366 * 24 * 3600
MIN_YEAR = 1970
MAX_YEAR = 9998
MAX_TEXT = 4096
MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 1 << 20
#: Every list answers at most this many items per page, whatever the request asks.
MAX_PAGE_SIZE = 500

E = TypeVar("E", bound=enum.Enum)


def seconds(field: str, value: int, *, maximum: int = MAX_SECONDS) -> timedelta:
    """A non-negative duration in whole seconds, at most ``maximum``."""
    if not 0 <= value <= maximum:
        raise InvalidArgument(field, f"must be between 0 and {maximum} seconds")
    return timedelta(seconds=value)


def int_range(field: str, value: int, minimum: int = 0, maximum: int = INT64_MAX) -> int:
    if not minimum <= value <= maximum:
        raise InvalidArgument(field, f"must be between {minimum} and {maximum}")
    return value


def enum_value(field: str, kind: type[E], value: int, *, allow_zero: bool = False) -> E:
    """The declared member of ``kind`` numbered ``value``; 0 (UNSPECIFIED) only if allowed."""
    if value == 0 and not allow_zero:
        raise InvalidArgument(field, "required")
    try:
        return kind(value)
    except ValueError:
        raise InvalidArgument(field, f"unknown value {value}") from None


def text(field: str, value: str, *, maximum: int = MAX_TEXT, required: bool = False) -> str:
    if required and not value:
        raise InvalidArgument(field, "required")
    if len(value) > maximum:
        raise InvalidArgument(field, f"at most {maximum} characters")
    return value


def page_size(field: str, requested: int, default: int, cap: int = MAX_PAGE_SIZE) -> int:
    """The page size to use: ``default`` for 0, at most ``cap``; negative is refused."""
    if requested < 0:
        raise InvalidArgument(field, "must not be negative")
    return min(requested or default, cap)


def in_year_range(moment: date) -> bool:
    """True when ``moment`` (a date or a datetime) lies in MIN_YEAR … MAX_YEAR."""
    return MIN_YEAR <= moment.year <= MAX_YEAR


def check_moment(moment: datetime) -> datetime:
    """``moment`` when it is in range in UTC too; ValueError otherwise."""
    if not in_year_range(moment):
        raise ValueError(f"year must be between {MIN_YEAR} and {MAX_YEAR}")
    return moment


def json_depth_ok(data: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True when the brackets of ``data`` (outside strings) nest at most ``max_depth`` deep."""
    text_ = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    # Fewer opening brackets than the limit cannot nest deeper than it (strings included): the
    # usual document is answered at C speed, and only one with many brackets is walked char by char.
    if text_.count("{") + text_.count("[") <= max_depth:
        return True
    depth = 0
    in_string = escaped = False
    for char in text_:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return False
        elif char in "]}":
            depth -= 1
    return True


def loads_json(data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """``json.loads`` that refuses (ValueError) what is too long or nested too deep."""
    if len(data) > max_bytes:
        raise ValueError(f"JSON longer than {max_bytes} bytes")
    if not json_depth_ok(data, max_depth):
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except RecursionError:  # unreachable after the depth check; kept as a last guard
        raise ValueError("JSON nested too deep") from None


# -- every request, before its handler (``grpc_status.maps_errors`` calls this) ----------------

#: The longest value a request field of this name may carry: the narrowest database column it is
#: written to (PostgreSQL refuses longer values with an error, so they are refused here first).
FIELD_LIMITS: dict[str, int] = {
    "card_no": 32,
    "merchant_id": 32,
    "mchid": 32,
    "sp_mchid": 32,
    "sub_mchid": 32,
    "appid": 32,
    "out_trade_no": 32,
    "out_refund_no": 64,
    "order_no": 128,
    "request_id": 128,
    "idempotency_key": 64,
    "payer_openid": 128,
    "openid": 128,
    "template_id": 128,
    "holder_name": 200,
    "operator": 64,
    "reason": 256,
    "description": 256,
    "attach": 256,
    "method": 128,
    "page_token": 512,
    "approval_id": 32,
    # FindOrders: an order number, card number or WeChat transaction id (at most 64 characters).
    "query": 64,
}
#: Where one message's field is stored wider than the name's default (message.field -> limit).
MESSAGE_FIELD_LIMITS: dict[str, int] = {
    "wechatpay.v1.SendTemplateMessageRequest.idempotency_key": 256,
}
#: Requests nest at most this deep, and a repeated field or map holds at most MAX_ITEMS values.
MAX_DEPTH = 8
MAX_ITEMS = 1000


def check_request(message: Any, path: str = "", depth: int = 0) -> None:
    """Refuse (InvalidArgument naming the field) any string of ``message`` with a NUL character
    (PostgreSQL cannot store one) or longer than its field's limit, and repeated fields or maps
    beyond ``MAX_ITEMS`` — whatever the handler then checks of its own."""
    if depth > MAX_DEPTH:
        raise InvalidArgument(path.rstrip(".") or "request", "nested too deep")
    full_name = message.DESCRIPTOR.full_name
    for field, value in message.ListFields():
        name = f"{path}{field.name}"
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if is_map:
            items = list(value.items())
            if len(items) > MAX_ITEMS:
                raise InvalidArgument(name, f"at most {MAX_ITEMS} entries")
            for key, item in items:
                if isinstance(key, str):
                    _check_text(name, key, MAX_TEXT)
                _check_value(f"{name}[{key}]", item, MAX_TEXT, depth)
            continue
        limit = MESSAGE_FIELD_LIMITS.get(f"{full_name}.{field.name}", FIELD_LIMITS.get(field.name, MAX_TEXT))
        if field.is_repeated:
            if len(value) > MAX_ITEMS:
                raise InvalidArgument(name, f"at most {MAX_ITEMS} values")
            for index, item in enumerate(value):
                _check_value(f"{name}[{index}]", item, limit, depth)
        else:
            _check_value(name, value, limit, depth)


def _check_value(name: str, value: Any, limit: int, depth: int) -> None:
    if isinstance(value, str):
        _check_text(name, value, limit)
    elif hasattr(value, "DESCRIPTOR") and hasattr(value, "ListFields"):
        check_request(value, f"{name}.", depth + 1)


def _check_text(name: str, value: str, limit: int) -> None:
    if "\x00" in value:
        raise InvalidArgument(name, "must not contain NUL characters")
    if len(value) > limit:
        raise InvalidArgument(name, f"at most {limit} characters")
