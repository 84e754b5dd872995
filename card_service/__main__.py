"""``python -m card_service``: serve the card system simulator."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from card_service import bootstrap
from card_service.settings import CardSettings
from rc_common.logs import configure_logging
from rc_common.settings import parse_settings


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(
        CardSettings,
        argv,
        prog="python -m card_service",
        description="Card system simulator: stored-value ledger with pre-recharge, confirm, void "
        "and consume, plus FaultControl for chaos runs.",
    )
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(bootstrap.serve(settings))


if __name__ == "__main__":
    main(sys.argv[1:])
