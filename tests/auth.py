"""Credentials for tests: one fixed token key, tokens with chosen roles, the servers' security.

In-process servers take ``security()`` (development mode with this key); processes take
``--auth-key-file write_key_file(dir)``. Clients present ``client(...)`` (a token, no TLS) through
``rc_common.channels``; stacks started by ``scripts.stack`` write their own key and token instead
(``ClientAuth.from_dir(stack.workdir)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rc_common.access import ServerSecurity
from rc_common.auth import APPROVER, OPERATOR, TEST, VIEWER, issue_token
from rc_common.channels import ClientAuth

#: The tests' token key (not a secret: it protects nothing outside a test).
KEY = bytes(range(32))
ALL_ROLES = (VIEWER, OPERATOR, APPROVER, TEST)
TTL = 3600.0


def token(roles: Iterable[str] = ALL_ROLES, subject: str = "tester") -> str:
    return issue_token(KEY, subject, roles, TTL)


def client(roles: Iterable[str] = ALL_ROLES, subject: str = "tester") -> ClientAuth:
    """What a test operator presents: a token with ``roles`` (plaintext: loopback servers)."""
    return ClientAuth(token=token(roles, subject))


def security() -> ServerSecurity:
    """Development mode that accepts this module's tokens."""
    return ServerSecurity(auth_key=KEY)


def write_key_file(folder: Path) -> str:
    """``KEY`` in ``folder/auth.key`` (for ``--auth-key-file`` / ``auth_key_file=``); its path."""
    path = folder / "auth.key"
    path.write_text(KEY.hex())
    return str(path)


def write_token_file(folder: Path, roles: Iterable[str] = ALL_ROLES, subject: str = "tester") -> str:
    """A token in ``folder/ops.token`` (for the ops CLI's ``--token-file``); its path."""
    path = folder / "ops.token"
    path.write_text(token(roles, subject))
    return str(path)
