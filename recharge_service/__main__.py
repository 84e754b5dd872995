"""``python -m recharge_service``: serve the recharge center."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from rc_common.logs import configure_logging
from rc_common.settings import parse_settings
from recharge_service import bootstrap
from recharge_service.settings import RechargeSettings


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(
        RechargeSettings,
        argv,
        prog="python -m recharge_service",
        description="Recharge center: stored-value card top-ups paid with WeChat Pay; "
        "pre-recharge, fenced confirm/void, refunds only after a void, sentinel, operator tools.",
    )
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(bootstrap.serve(settings))


if __name__ == "__main__":
    main(sys.argv[1:])
