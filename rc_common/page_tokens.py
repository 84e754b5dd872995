"""Page tokens: the one codec every paged list uses (orders, anomalies, a card's journal, sent
messages).

A token is opaque to callers: ``base64url(payload) "." base64url(mac)`` where the payload is the
JSON ``{"<kind>": [strings]}`` and the mac is HMAC-SHA256 over the kind and the payload under
the process's page-token key. :func:`read` checks the mac first (in constant time), so a forged
or altered token never gets parsed, let alone reaches SQL; then it refuses anything of the wrong
kind or shape with ``ValueError``, which the caller turns into INVALID_ARGUMENT naming
``page_token``. Numbers must fit int64 (:func:`read_position`).

The key: :func:`use_key` at start (``--page-token-key-file`` or ``RC_PAGE_TOKEN_KEY``, see
:func:`load_key`); without one each process draws a random key, so a token is only good on the
process that made it — replicas behind one address must share a key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from rc_common.validation import INT64_MAX, loads_json

MAX_LENGTH = 512
#: Environment variable holding the key itself (text); the file setting wins when both are given.
KEY_ENV = "RC_PAGE_TOKEN_KEY"
MIN_KEY_BYTES = 16

_key: bytes | None = None


def use_key(key: bytes) -> None:
    """Make and check every token with ``key`` from now on (called once, by bootstrap)."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a page-token key needs at least {MIN_KEY_BYTES} bytes")
    global _key
    _key = key


def load_key(key_file: str) -> tuple[bytes, str]:
    """The key to use and where it came from: ``key_file``'s bytes (stripped), else the
    ``RC_PAGE_TOKEN_KEY`` environment variable, else a random key ("random")."""
    if key_file:
        return Path(key_file).read_bytes().strip(), "file"
    from_env = os.environ.get(KEY_ENV, "")
    if from_env:
        return from_env.encode(), "environment"
    return secrets.token_bytes(32), "random"


def _current_key() -> bytes:
    global _key
    if _key is None:
        _key = secrets.token_bytes(32)
    return _key


def _mac(kind: str, payload: bytes) -> bytes:
    return hmac.new(_current_key(), kind.encode() + b"\0" + payload, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make(kind: str, values: list[str]) -> str:
    payload = json.dumps({kind: values}, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_mac(kind, payload))}"


def read(kind: str, token: str, size: int) -> list[str]:
    """The ``size`` strings a token of ``kind`` holds; ValueError for anything we did not make."""
    if len(token) > MAX_LENGTH or token.count(".") != 1:
        raise ValueError("not a page token of this list")
    encoded, _, mac = token.partition(".")
    try:
        payload, given = _unb64(encoded), _unb64(mac)
    except (ValueError, binascii.Error) as exc:
        raise ValueError("not a page token of this list") from exc
    if not hmac.compare_digest(given, _mac(kind, payload)):
        raise ValueError("not a page token of this list")
    try:
        values = loads_json(payload)[kind]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("not a page token of this list") from exc
    if not isinstance(values, list) or len(values) != size or not all(isinstance(v, str) for v in values):
        raise ValueError("not a page token of this list")
    return values


def read_position(text: str) -> int:
    """A position a token holds as digits: 1 … int64 max (ValueError otherwise)."""
    if not text.isascii() or not text.isdigit() or len(text) > 19 or not 0 < int(text) <= INT64_MAX:
        raise ValueError("not a page token of this list")
    return int(text)


def configure(key_file: str) -> str:
    """Load and use the page-token key (bootstrap); logs where it came from and returns that.
    Without a configured key, a process that already drew one (several servers in one process,
    as in the tests) keeps it."""
    from rc_common.logs import get_logger

    key, source = load_key(key_file)
    if source != "random" or _key is None:
        use_key(key)
    log = get_logger("page_tokens")
    if source == "random":
        log.warning(
            "page_token_key_random",
            note="tokens are good on this process only; replicas behind one address need the same "
            f"key (--page-token-key-file or {KEY_ENV})",
        )
    else:
        log.info("page_token_key_loaded", source=source)
    return source
