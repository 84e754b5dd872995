"""Who is calling: services by their mTLS certificate, people by a signed operator token.

An operator token is ``rc1.<payload>.<mac>``: ``payload`` the base64url of a small JSON object
``{"sub": subject, "roles": [...], "exp": unix seconds}`` and ``mac`` the base64url HMAC-SHA256 of
``rc1.<payload>`` under the shared auth key (``--auth-key-file``: at least 32 bytes, hex in the
file). Every service holding the key verifies tokens; only ``python -m scripts.tokens`` (and the
started stacks) issue them. A token travels as ``authorization: Bearer <token>``.

``Principal`` is the caller as the policy sees it; ``current_principal()`` gives it to a handler
(the operator written on a timeline is the token's subject, never a name in the request).
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TOKEN_PREFIX = "rc1"
MIN_KEY_BYTES = 32
MAX_TOKEN_CHARS = 4096
MAX_SUBJECT_CHARS = 64  # an operator's name on a timeline: 1 to 64 characters

#: The roles a token may carry (rc_common.policy says what each may call).
VIEWER, OPERATOR, APPROVER, TEST = "viewer", "operator", "approver", "test"
ROLES = frozenset({VIEWER, OPERATOR, APPROVER, TEST})


class TokenRefused(Exception):
    """A token that does not authenticate anyone; ``reason`` is the code the caller sees."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class AuthKeyError(ValueError):
    """An auth key file that cannot be used (missing, not hex, too short)."""


@dataclass(frozen=True)
class Principal:
    """The caller of one RPC.

    ``service``: the CN of the peer's verified certificate (mutual TLS), "" without TLS.
    ``subject``/``roles``: from a verified operator token, "" / empty without one.
    ``loopback_plaintext``: no TLS on this server and the peer is on a loopback address
    (development mode: an anonymous caller there may use the customer-facing calls)."""

    service: str = ""
    subject: str = ""
    roles: frozenset[str] = field(default_factory=frozenset)
    loopback_plaintext: bool = False

    @property
    def anonymous(self) -> bool:
        return not self.service and not self.subject

    def describe(self) -> str:
        parts = [f"service={self.service}"] if self.service else []
        parts += [f"subject={self.subject}"] if self.subject else []
        return " ".join(parts) or "anonymous"


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def current_principal() -> Principal | None:
    """The caller of the RPC being handled (set by the policy interceptor), None outside one."""
    return _current.get()


def acting_subject() -> str:
    """The token subject of the RPC being handled ("" without one): the operator on a timeline."""
    principal = _current.get()
    return principal.subject if principal is not None else ""


def bind_principal(principal: Principal) -> contextvars.Token[Principal | None]:
    return _current.set(principal)


def unbind_principal(token: contextvars.Token[Principal | None]) -> None:
    _current.reset(token)


def generate_key() -> bytes:
    return secrets.token_bytes(MIN_KEY_BYTES)


def write_key(path: Path) -> bytes:
    """Create a new key file (hex, mode 0600) at ``path`` unless one is there; returns the key."""
    if path.exists():
        return load_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    path.touch(mode=0o600)
    path.write_text(key.hex() + "\n")
    return key


def load_key(path: str | Path) -> bytes:
    """The key in ``path`` (hex); raises AuthKeyError naming the problem (never the key)."""
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise AuthKeyError(f"auth key file {path}: cannot read ({exc.strerror})") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise AuthKeyError(f"auth key file {path}: not hex") from None
    if len(key) < MIN_KEY_BYTES:
        raise AuthKeyError(f"auth key file {path}: at least {MIN_KEY_BYTES} bytes needed, got {len(key)}")
    return key


def load_optional_key(path: str) -> bytes | None:
    return load_key(path) if path else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, signed: str) -> bytes:
    return hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()


def issue_token(
    key: bytes, subject: str, roles: Iterable[str], ttl: float, *, now: float | None = None
) -> str:
    """A token for ``subject`` with ``roles``, valid ``ttl`` seconds from ``now``."""
    wanted = sorted(set(roles))
    unknown = set(wanted) - ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; known: {sorted(ROLES)}")
    if not subject or len(subject) > MAX_SUBJECT_CHARS:
        raise ValueError(f"subject must be 1..{MAX_SUBJECT_CHARS} characters")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    issued = time.time() if now is None else now
    payload = json.dumps({"sub": subject, "roles": wanted, "exp": int(issued + ttl)}, separators=(",", ":"))
    signed = f"{TOKEN_PREFIX}.{_b64(payload.encode())}"
    return f"{signed}.{_b64(_mac(key, signed))}"


def verify_token(key: bytes, token: str, *, now: float | None = None) -> tuple[str, frozenset[str]]:
    """``(subject, roles)`` of a valid token; raises TokenRefused(TOKEN_INVALID | TOKEN_EXPIRED)."""
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRefused("TOKEN_INVALID", "token too long")
    prefix, _, rest = token.partition(".")
    body, _, mac = rest.partition(".")
    if prefix != TOKEN_PREFIX or not body or not mac:
        raise TokenRefused("TOKEN_INVALID", "not an operator token")
    try:
        given = _unb64(mac)
    except (binascii.Error, ValueError):
        raise TokenRefused("TOKEN_INVALID", "token signature is not base64url") from None
    if not hmac.compare_digest(given, _mac(key, f"{prefix}.{body}")):
        raise TokenRefused("TOKEN_INVALID", "token signature does not verify")
    try:  # signed by our key from here on: still checked, never trusted blindly
        claims = json.loads(_unb64(body))
        subject, roles, expiry = claims["sub"], claims["roles"], claims["exp"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise TokenRefused("TOKEN_INVALID", "token payload is malformed") from None
    if (
        not isinstance(subject, str)
        or not subject
        or not isinstance(roles, list)
        or not all(isinstance(r, str) for r in roles)
        or not isinstance(expiry, int)
    ):
        raise TokenRefused("TOKEN_INVALID", "token payload is malformed")
    if (time.time() if now is None else now) >= expiry:
        raise TokenRefused("TOKEN_EXPIRED", "token expired")
    return subject, frozenset(roles) & ROLES


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries ``token``."""
    return (("authorization", f"Bearer {token}"),)


def read_token_file(path: str | Path) -> str:
    """A token from a file (whitespace stripped); raises ValueError naming the file."""
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"token file {path}: cannot read ({exc.strerror})") from None
    if not token:
        raise ValueError(f"token file {path} is empty")
    return token
