"""The operators' console for a started stack (``make run``, the browser tests), and the
development accounts ``make run`` gives it.

``console_process(stack, accounts_file)`` is a ``ServiceProcess`` (start it with a listen address):
``python -m recharge_service.console`` against the stack's first recharge-center replica, signing
operator tokens with the stack's auth key; with a TLS stack it serves HTTPS with the ``ops``
certificate and calls with it. ``dev_accounts`` makes one viewer, one operator and one approver
with random passwords, written (mode 0600) to a file next to the accounts: kept across restarts
while they still log in, made anew otherwise. Other accounts in the file are left alone.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path

from recharge_service.console.accounts import AccountBook, add_account, new_account
from scripts.stack import ServiceProcess, Stack

#: Under a stack's workdir: the console's accounts and the development passwords.
CONSOLE_DIR = "console"
ACCOUNTS_FILE = "accounts.json"
PASSWORDS_FILE = "dev-passwords.txt"
#: The development accounts of ``make run``: name -> roles.
DEV_ACCOUNTS = {
    "dev-viewer": ("viewer",),
    "dev-operator": ("operator",),
    "dev-approver": ("approver",),
}


def console_dir(stack: Stack) -> Path:
    return stack.workdir / CONSOLE_DIR


def console_process(stack: Stack, accounts_file: Path, args: Sequence[str] = ()) -> ServiceProcess:
    """The console of ``stack`` (started already: the console needs the recharge center's address)."""
    tls = ["--tls-dir", str(stack.tls_dir("ops"))] if stack.tls else []
    return ServiceProcess(
        "console",
        "recharge_service.console",
        [
            *("--target", stack.recharge.address, "--auth-key-file", str(stack.auth_key_path)),
            *("--accounts-file", str(accounts_file)),
            *tls,
            *args,
        ],
        stack.workdir / "logs" / "console.log",
        metrics=False,
    )


def _read_passwords(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split(None, 1) for line in path.read_text().splitlines() if line.strip() and line[0] != "#")
    return {name: password.strip() for name, password in (p for p in pairs if len(p) == 2)}


def dev_accounts(folder: Path) -> tuple[Path, Path]:
    """``folder/accounts.json`` with the development accounts and ``folder/dev-passwords.txt``
    (name and password per line, mode 0600); returns both paths."""
    accounts, passwords = folder / ACCOUNTS_FILE, folder / PASSWORDS_FILE
    known = _read_passwords(passwords)
    book = AccountBook(accounts)
    if all(name in known and book.check(name, known[name]) for name in DEV_ACCOUNTS):
        return accounts, passwords
    fresh = {name: secrets.token_urlsafe(12) for name in DEV_ACCOUNTS}
    for name, roles in DEV_ACCOUNTS.items():
        add_account(accounts, new_account(name, roles, fresh[name]), replace=True)
    folder.mkdir(parents=True, exist_ok=True)
    passwords.touch(mode=0o600)
    passwords.chmod(0o600)
    lines = ["# The console's development accounts (make run): name, then password. Not for production."]
    passwords.write_text("\n".join([*lines, *(f"{name} {fresh[name]}" for name in DEV_ACCOUNTS)]) + "\n")
    return accounts, passwords
