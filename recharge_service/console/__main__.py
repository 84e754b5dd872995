"""``python -m recharge_service.console``: serve the operators' web console; with
``add-operator``, ``list-operators`` or ``remove-operator`` first, manage its accounts instead."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from rc_common.auth import AuthKeyError
from rc_common.logs import configure_logging, get_logger
from rc_common.settings import parse_settings
from rc_common.tls import TlsConfigError
from recharge_service.console import operators_cli
from recharge_service.console.accounts import AccountError
from recharge_service.console.settings import ConsoleSettings

DESCRIPTION = (
    "The operators' web console of the recharge center: anomalies, an order's whole story and its "
    "resolve actions, four-eyes approvals, reconciliation, health. It calls only the recharge "
    "center's RechargeOps, as the logged-in operator (a short-lived token signed with "
    "--auth-key-file names them on every call)."
)
EPILOG = """accounts (the password from $RC_CONSOLE_PASSWORD, else asked; never an argument):
  python -m recharge_service.console add-operator NAME --role operator [--role approver]
  python -m recharge_service.console list-operators
  python -m recharge_service.console remove-operator NAME"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if (args[:1] and args[0] in operators_cli.COMMANDS) or args[:1] == ["--accounts-file"]:
        return operators_cli.main(args)
    settings = parse_settings(
        ConsoleSettings,
        args,
        prog="python -m recharge_service.console",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    configure_logging(settings.log_level, settings.log_format)
    from recharge_service.console.server import serve

    try:
        asyncio.run(serve(settings))
    except (TlsConfigError, AuthKeyError, AccountError) as refused:
        get_logger("console").error("start_refused", error=str(refused))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
