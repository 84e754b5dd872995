"""The accounts file: scrypt hashes with a salt per account, mode 0600, and passwords that never
travel as command-line arguments."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from recharge_service.console import accounts as accounts_module
from recharge_service.console import operators_cli
from recharge_service.console.accounts import (
    AccountBook,
    AccountError,
    add_account,
    hash_password,
    load_accounts,
    new_account,
    remove_account,
    verify_password,
)

PASSWORD = "correct horse battery"


def test_a_hash_verifies_its_password_only() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + " ", stored)
    assert not verify_password("", stored)
    assert PASSWORD not in stored


def test_every_account_has_its_own_salt() -> None:
    one, two = hash_password(PASSWORD), hash_password(PASSWORD)
    assert one != two
    assert one.split("$")[4] != two.split("$")[4]


@pytest.mark.parametrize("stored", ["", "plain", "md5$x$y", "scrypt$16384$8$1$%%%$%%%", "scrypt$a$b$c$d$e"])
def test_a_malformed_hash_matches_nothing(stored: str) -> None:
    assert not verify_password(PASSWORD, stored)


def test_an_unknown_name_costs_a_real_scrypt_check() -> None:
    # The stand-in hash decodes to a real salt and digest: verifying against it runs scrypt too.
    parts = accounts_module._DUMMY_HASH.split("$")
    assert parts[0] == "scrypt" and len(parts) == 6
    assert not verify_password(PASSWORD, accounts_module._DUMMY_HASH)


def test_the_file_is_written_readable_by_its_owner_only_and_holds_no_password(tmp_path: Path) -> None:
    path = tmp_path / "console" / "accounts.json"
    add_account(path, new_account("alice", ["operator", "approver"], PASSWORD))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert PASSWORD not in text
    (entry,) = json.loads(text)["accounts"]
    assert entry["subject"] == "alice" and entry["roles"] == ["approver", "operator"]
    assert entry["created_at"].endswith("+08:00")
    assert verify_password(PASSWORD, entry["password"])


def test_accounts_are_added_replaced_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    add_account(path, new_account("alice", ["viewer"], PASSWORD))
    with pytest.raises(AccountError, match="exists"):
        add_account(path, new_account("alice", ["operator"], PASSWORD))
    add_account(path, new_account("alice", ["operator"], "another password"), replace=True)
    assert load_accounts(path)["alice"].roles == {"operator"}
    remove_account(path, "alice")
    assert load_accounts(path) == {}
    with pytest.raises(AccountError, match="no operator"):
        remove_account(path, "alice")


@pytest.mark.parametrize(
    ("name", "roles", "password"),
    [
        ("", ["viewer"], PASSWORD),
        ("has space", ["viewer"], PASSWORD),
        ("x" * 65, ["viewer"], PASSWORD),
        ("alice", [], PASSWORD),
        ("alice", ["test"], PASSWORD),  # a harness role, never a person's
        ("alice", ["root"], PASSWORD),
        ("alice", ["viewer"], "short"),
    ],
)
def test_bad_accounts_are_refused(name: str, roles: list[str], password: str) -> None:
    with pytest.raises(AccountError):
        new_account(name, roles, password)


def test_the_console_reads_the_file_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    book = AccountBook(path)
    assert book.get("alice") is None
    add_account(path, new_account("alice", ["operator"], PASSWORD))
    assert book.check("alice", PASSWORD) is not None
    assert book.check("alice", "wrong password") is None
    assert book.check("nobody", PASSWORD) is None
    remove_account(path, "alice")
    assert book.get("alice") is None


def test_add_operator_takes_the_password_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "accounts.json"
    monkeypatch.setenv("RC_CONSOLE_PASSWORD", PASSWORD)
    argv = ["--accounts-file", str(path), "add-operator", "olga", "--role", "operator", "--role", "approver"]
    assert operators_cli.main(argv) == 0
    assert PASSWORD not in " ".join(argv)
    assert AccountBook(path).check("olga", PASSWORD) is not None
    assert operators_cli.main(["--accounts-file", str(path), "list-operators"]) == 0
    listed = capsys.readouterr().out
    assert "olga" in listed and "approver,operator" in listed and "scrypt" not in listed


def test_add_operator_asks_twice_when_the_environment_has_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "accounts.json"
    monkeypatch.delenv("RC_CONSOLE_PASSWORD", raising=False)
    answers = iter([PASSWORD, PASSWORD + "!"])
    monkeypatch.setattr(operators_cli.getpass, "getpass", lambda prompt="": next(answers))
    assert operators_cli.main(["--accounts-file", str(path), "add-operator", "olga", "--role", "viewer"]) == 1
    assert load_accounts(path) == {}  # the two answers differed: nothing written
    answers = iter([PASSWORD, PASSWORD])
    assert operators_cli.main(["--accounts-file", str(path), "add-operator", "olga", "--role", "viewer"]) == 0
    assert AccountBook(path).check("olga", PASSWORD) is not None


def test_there_is_no_password_argument(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        operators_cli.main(
            ["--accounts-file", str(tmp_path / "a.json"), "add-operator", "olga", "--role", "viewer",
             "--password", PASSWORD]
        )  # fmt: skip
    assert exited.value.code == 2
