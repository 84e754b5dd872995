"""``python -m wechat_mock``: serve the WeChat Pay simulator."""

from __future__ import annotations

from rc_common.launcher import run_service
from wechat_mock import bootstrap
from wechat_mock.migrations import SCHEMA
from wechat_mock.settings import WechatSettings

if __name__ == "__main__":
    run_service(
        "wechat_mock",
        WechatSettings,
        bootstrap.serve,
        "WeChat Pay APIv3 simulator: prepay, pay, query, close, refund, trade bill; "
        "signed, encrypted notifications on WeChat's retry schedule; FaultControl for chaos runs.",
        schema=SCHEMA,
        database_url=lambda settings: settings.db,
    )
