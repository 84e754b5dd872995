"""``python -m wechat_mock``: serve the WeChat Pay simulator."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from rc_common.logs import configure_logging
from rc_common.settings import parse_settings
from wechat_mock import bootstrap
from wechat_mock.settings import WechatSettings


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(
        WechatSettings,
        argv,
        prog="python -m wechat_mock",
        description="WeChat Pay APIv3 simulator: prepay, pay, query, close, refund, trade bill; "
        "signed, encrypted notifications on WeChat's retry schedule; FaultControl for chaos runs.",
    )
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(bootstrap.serve(settings))


if __name__ == "__main__":
    main(sys.argv[1:])
