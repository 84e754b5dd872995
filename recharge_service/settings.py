"""Recharge center settings (see ``python -m recharge_service --help``)."""

from __future__ import annotations

from dataclasses import dataclass

from rc_common.settings import parse_listen, setting


@dataclass(frozen=True)
class RechargeSettings:
    listen: str = setting("127.0.0.1:50051", env="RECHARGE_LISTEN", help="host:port to serve gRPC on")
    db: str = setting(
        "sqlite+aiosqlite:///var/recharge.db", env="RECHARGE_DB", help="SQLAlchemy async database URL"
    )
    card_target: str = setting("127.0.0.1:50052", env="RECHARGE_CARD_TARGET", help="card system host:port")
    payment_target: str = setting(
        "127.0.0.1:50053", env="RECHARGE_PAYMENT_TARGET", help="WeChat Pay (simulator) host:port"
    )
    wechat_keys_dir: str = setting(
        "var/wechat-keys",
        env="RECHARGE_WECHAT_KEYS_DIR",
        help="directory with WeChat's platform public key (PEM) and the APIv3 key",
    )
    grace: float = setting(5.0, env="RECHARGE_GRACE", help="seconds to finish in-flight RPCs on shutdown")
    log_level: str = setting("info", env="RECHARGE_LOG_LEVEL", help="debug, info, warning, error")
    log_format: str = setting("console", env="RECHARGE_LOG_FORMAT", help="console or json")

    def validate(self) -> None:
        parse_listen(self.listen)
        parse_listen(self.card_target)
        parse_listen(self.payment_target)
