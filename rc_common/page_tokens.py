"""Page tokens: the one codec every paged list uses (orders, anomalies, a card's journal).

A token is opaque to callers: base64url of ``{"<kind>": [strings]}``. Each list names its kind and
says what its strings are; :func:`read` refuses anything it did not make — wrong kind, wrong
shape, too long, nested JSON — with ``ValueError``, which the caller turns into INVALID_ARGUMENT
naming ``page_token``. A forged value never reaches SQL unchecked: numbers must fit int64.
"""

from __future__ import annotations

import base64
import binascii
import json

MAX_LENGTH = 512
INT64_MAX = 2**63 - 1


def make(kind: str, values: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({kind: values}).encode()).decode()


def read(kind: str, token: str, size: int) -> list[str]:
    """The ``size`` strings a token of ``kind`` holds; ValueError for anything we did not make."""
    try:
        if len(token) > MAX_LENGTH:
            raise ValueError("too long")
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        values = data[kind]
    except (ValueError, KeyError, TypeError, RecursionError, binascii.Error) as exc:
        raise ValueError("not a page token of this list") from exc
    if not isinstance(values, list) or len(values) != size or not all(isinstance(v, str) for v in values):
        raise ValueError("not a page token of this list")
    return values


def read_position(text: str) -> int:
    """A position a token holds as digits: 1 … int64 max (ValueError otherwise)."""
    if not text.isdigit() or not 0 < int(text) <= INT64_MAX:
        raise ValueError("not a page token of this list")
    return int(text)
