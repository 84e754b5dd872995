"""``python -m recharge_service.console add-operator | list-operators | remove-operator``.

    add-operator NAME --role operator [--role approver] [--replace]
        the password is read from $RC_CONSOLE_PASSWORD, else asked twice (never an argument,
        so it is in no shell history and no process list)
    list-operators                      names, roles, when made (never a hash)
    remove-operator NAME                their sessions end at their next request

Each takes ``--accounts-file`` (env ``CONSOLE_ACCOUNTS_FILE``, default var/console/accounts.json);
the file is written with mode 0600. Exit status: 0 done, 1 refused (the reason is printed), 2 bad
usage.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence

from recharge_service.console.accounts import (
    PERSON_ROLES,
    AccountError,
    add_account,
    check_password,
    created_at_text,
    load_accounts,
    new_account,
    remove_account,
)
from recharge_service.console.settings import DEFAULT_ACCOUNTS_FILE

COMMANDS = ("add-operator", "list-operators", "remove-operator")
PASSWORD_ENV = "RC_CONSOLE_PASSWORD"
ACCOUNTS_ENV = "CONSOLE_ACCOUNTS_FILE"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m recharge_service.console",
        description="The operators' accounts of the web console.",
    )
    top.add_argument(
        "--accounts-file",
        default=os.environ.get(ACCOUNTS_ENV, DEFAULT_ACCOUNTS_FILE),
        help=f"the accounts file [env {ACCOUNTS_ENV}] (default: %(default)s)",
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = sub.add_parser(
        "add-operator",
        help="create an operator (the password from $RC_CONSOLE_PASSWORD, else asked)",
        description=f"Create an operator account. The password is read from ${PASSWORD_ENV} when set, "
        "else asked twice on the terminal; it is never an argument.",
    )
    add.add_argument("name", help="the operator's name: on every timeline row they cause")
    add.add_argument(
        "--role", action="append", required=True, choices=PERSON_ROLES, help="a role (repeatable)"
    )
    add.add_argument(
        "--replace", action="store_true", help="replace an existing operator's roles and password"
    )
    sub.add_parser("list-operators", help="every operator with their roles")
    remove = sub.add_parser("remove-operator", help="remove an operator (their sessions end)")
    remove.add_argument("name")
    return top


def read_password() -> str:
    """``$RC_CONSOLE_PASSWORD``, else asked twice without echo."""
    given = os.environ.get(PASSWORD_ENV)
    if given is not None:
        return check_password(given)
    first = getpass.getpass("password: ")
    check_password(first)
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "add-operator":
            account = new_account(args.name, args.role, read_password())
            add_account(args.accounts_file, account, replace=args.replace)
            print(f"operator {account.subject} ({', '.join(sorted(account.roles))}) in {args.accounts_file}")
        elif args.command == "remove-operator":
            remove_account(args.accounts_file, args.name)
            print(f"removed {args.name}")
        else:
            accounts = load_accounts(args.accounts_file)
            for account in accounts.values():
                print(
                    f"{account.subject:<24} {','.join(sorted(account.roles)):<28} {created_at_text(account)}"
                )
            print(f"{len(accounts)} operators in {args.accounts_file}")
    except AccountError as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 1
    return 0
