"""WeChat Pay simulator settings (see ``python -m wechat_mock --help``)."""

from __future__ import annotations

from dataclasses import dataclass

from rc_common.settings import parse_listen, setting

#: WeChat's notification retry schedule, in seconds (15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h).
WECHAT_NOTIFY_SCHEDULE = (
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600
)  # fmt: skip


@dataclass(frozen=True)
class WechatSettings:
    listen: str = setting("127.0.0.1:50053", env="WECHAT_LISTEN", help="host:port to serve gRPC on")
    db: str = setting(
        "sqlite+aiosqlite:///var/wechat.db", env="WECHAT_DB", help="SQLAlchemy async database URL"
    )
    notify_target: str = setting(
        "127.0.0.1:50051",
        env="WECHAT_NOTIFY_TARGET",
        help="host:port of the merchant's PaymentNotifications service (the recharge center)",
    )
    keys_dir: str = setting(
        "var/wechat-keys",
        env="WECHAT_KEYS_DIR",
        help="where the platform key pair and APIv3 key live (created on first start)",
    )
    mchid: str = setting("1900000109", env="WECHAT_MCHID", help="merchant id put in transactions")
    appid: str = setting("wxd678efh567hg6787", env="WECHAT_APPID", help="app id put in transactions")
    notify_schedule: tuple[float, ...] = setting(
        tuple(float(s) for s in WECHAT_NOTIFY_SCHEDULE),
        env="WECHAT_NOTIFY_SCHEDULE",
        help="seconds between notification retries, comma separated (the first delivery is "
        "immediate; after the last gap's attempt fails the notification is given up)",
    )
    notify_timeout: float = setting(
        5.0, env="WECHAT_NOTIFY_TIMEOUT", help="seconds WeChat waits for the merchant's answer"
    )
    refund_delay: float = setting(
        2.0, env="WECHAT_REFUND_DELAY", help="seconds a refund stays PROCESSING before SUCCESS"
    )
    idle_poll: float = setting(
        5.0,
        env="WECHAT_IDLE_POLL",
        help="longest sleep of the background workers (notifier, refund settler) between looks at the "
        "database; they are also woken at once when work is added",
    )
    sign_probe_rate: float = setting(
        0.0,
        env="WECHAT_SIGN_PROBE_RATE",
        help="chance per delivery attempt of first sending a signature probe (signature "
        "WECHATPAY/SIGNTEST/...) that the merchant must refuse; 0 = never",
    )
    faults: str = setting("", env="WECHAT_FAULTS", help="fault profile to load at start (FaultPlan JSON)")
    grace: float = setting(5.0, env="WECHAT_GRACE", help="seconds to finish in-flight RPCs on shutdown")
    log_level: str = setting("info", env="WECHAT_LOG_LEVEL", help="debug, info, warning, error")
    log_format: str = setting("console", env="WECHAT_LOG_FORMAT", help="console or json")

    def validate(self) -> None:
        parse_listen(self.listen)
        if self.notify_target:
            parse_listen(self.notify_target)
        if any(gap < 0 for gap in self.notify_schedule):
            raise ValueError("--notify-schedule: gaps must not be negative")
        if self.notify_timeout <= 0:
            raise ValueError("--notify-timeout: must be positive")
        if self.refund_delay < 0:
            raise ValueError("--refund-delay: must not be negative")
        if self.idle_poll <= 0:
            raise ValueError("--idle-poll: must be positive")
        if not 0.0 <= self.sign_probe_rate <= 1.0:
            raise ValueError("--sign-probe-rate: must be within [0, 1]")
