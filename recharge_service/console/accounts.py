"""Operators' accounts: a JSON file of subjects, roles and scrypt password hashes.

The file (mode 0600, replaced atomically on every change)::

    {"version": 1, "accounts": [
      {"subject": "alice", "roles": ["operator"], "created_at": "2026-11-30T20:56:55+08:00",
       "password": "scrypt$16384$8$1$<salt, base64>$<hash, base64>"}]}

Each account has its own random 16-byte salt; the scrypt cost is written next to each hash, so a
stronger cost later still verifies old hashes. The subject is the operator's name on every
timeline (the token the console mints for them names it); roles are those of ``rc_common.auth``
that people hold: viewer, operator, approver.

``AccountBook`` is the console's view of the file: read again whenever the file changes (its
mtime and size), so ``remove-operator`` ends that operator's sessions at their next request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rc_common.auth import APPROVER, MAX_SUBJECT_CHARS, OPERATOR, VIEWER
from rc_common.clock import CHINA, utc_now

#: The roles a person may hold (``test`` is for harnesses, never an account).
PERSON_ROLES = (VIEWER, OPERATOR, APPROVER)
SUBJECT_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._@-]{{0,{MAX_SUBJECT_CHARS - 1}}}$")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
FILE_VERSION = 1
#: scrypt cost: about 50 ms and 16 MiB per check on the machines this runs on.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32


class AccountError(ValueError):
    """An account or accounts file that cannot be used; the message names the problem (never a
    password or a hash)."""


@dataclass(frozen=True)
class Account:
    subject: str
    roles: frozenset[str]
    password_hash: str
    created_at: str

    def to_json(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "roles": sorted(self.roles),
            "created_at": self.created_at,
            "password": self.password_hash,
        }


def check_subject(subject: str) -> str:
    if not SUBJECT_PATTERN.match(subject):
        raise AccountError(
            f"an operator's name is 1-{MAX_SUBJECT_CHARS} characters of A-Z a-z 0-9 . _ @ -, "
            "starting with a letter or digit"
        )
    return subject


def check_roles(roles: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(roles)
    if not wanted:
        raise AccountError(f"at least one role: {', '.join(PERSON_ROLES)}")
    unknown = wanted - set(PERSON_ROLES)
    if unknown:
        raise AccountError(f"unknown roles {sorted(unknown)}; an operator may hold {', '.join(PERSON_ROLES)}")
    return wanted


def check_password(password: str) -> str:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise AccountError(f"a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
    return password


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES, maxmem=256 * 1024 * 1024
    )


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` of ``password`` with a fresh random salt (or ``salt``)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant time in the comparison); a malformed
    hash matches nothing."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


#: Checked when the account named does not exist, so a wrong name costs what a wrong password does.
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def new_account(subject: str, roles: Iterable[str], password: str) -> Account:
    created = utc_now().astimezone(CHINA).isoformat(timespec="seconds")
    return Account(
        check_subject(subject), check_roles(roles), hash_password(check_password(password)), created
    )


def load_accounts(path: str | Path) -> dict[str, Account]:
    """The accounts in ``path`` by subject ({} when the file does not exist)."""
    file = Path(path)
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AccountError(f"accounts file {file}: cannot read ({exc.strerror})") from None
    except ValueError:
        raise AccountError(f"accounts file {file}: not JSON") from None
    if (
        not isinstance(raw, dict)
        or raw.get("version") != FILE_VERSION
        or not isinstance(raw.get("accounts"), list)
    ):
        raise AccountError(f"accounts file {file}: not a version {FILE_VERSION} accounts file")
    accounts: dict[str, Account] = {}
    for entry in raw["accounts"]:
        try:
            account = Account(
                check_subject(str(entry["subject"])),
                check_roles(str(role) for role in entry["roles"]),
                str(entry["password"]),
                str(entry.get("created_at", "")),
            )
        except (KeyError, TypeError, AccountError) as exc:
            raise AccountError(f"accounts file {file}: a malformed account ({exc})") from None
        accounts[account.subject] = account
    return accounts


def save_accounts(path: str | Path, accounts: dict[str, Account]) -> None:
    """Write ``accounts`` to ``path`` atomically, readable and writable by its owner only."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    body = {"version": FILE_VERSION, "accounts": [accounts[s].to_json() for s in sorted(accounts)]}
    handle, temporary = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.")  # created 0600
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(body, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def add_account(path: str | Path, account: Account, *, replace: bool = False) -> None:
    accounts = load_accounts(path)
    if account.subject in accounts and not replace:
        raise AccountError(f"operator {account.subject} exists (--replace sets new roles and password)")
    accounts[account.subject] = account
    save_accounts(path, accounts)


def remove_account(path: str | Path, subject: str) -> None:
    accounts = load_accounts(path)
    if accounts.pop(subject, None) is None:
        raise AccountError(f"no operator {subject}")
    save_accounts(path, accounts)


class AccountBook:
    """The accounts file as the running console reads it: again whenever it changes."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._seen: tuple[int, int] | None = None
        self._accounts: dict[str, Account] = {}

    def _fresh(self) -> dict[str, Account]:
        try:
            stat = self._path.stat()
            seen: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            seen = None
        if seen != self._seen or seen is None:
            self._accounts = load_accounts(self._path)
            self._seen = seen
        return self._accounts

    def get(self, subject: str) -> Account | None:
        return self._fresh().get(subject)

    def check(self, subject: str, password: str) -> Account | None:
        """The account when ``password`` is its password; None otherwise (a missing account
        costs the same scrypt as a wrong password)."""
        account = self._fresh().get(subject)
        matches = verify_password(password, account.password_hash if account else _DUMMY_HASH)
        return account if account is not None and matches else None

    def all(self) -> list[Account]:
        accounts = self._fresh()
        return [accounts[s] for s in sorted(accounts)]


def created_at_text(account: Account) -> str:
    """When the account was made, as written (an unparsable value is shown as it is)."""
    try:
        return (
            datetime.fromisoformat(account.created_at).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S +08:00")
        )
    except ValueError:
        return account.created_at
