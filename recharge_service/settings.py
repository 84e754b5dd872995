"""Recharge center settings (see ``python -m recharge_service --help``).

Every duration is a setting, so tests and chaos runs can shrink them to fractions of a second.
"""

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
        help="directory with WeChat's platform public key (platform_public_key.pem), its id "
        "(public_key_id.txt) and the APIv3 key (apiv3_key.txt)",
    )
    wechat_mchid: str = setting(
        "1900000109",
        env="RECHARGE_WECHAT_MCHID",
        help="our WeChat Pay merchant id (notifications must match)",
    )
    order_expiry: float = setting(
        1800.0,
        env="RECHARGE_ORDER_EXPIRY",
        help="seconds an order may wait for payment; sent to WeChat as time_expire",
    )
    notify_max_skew: float = setting(
        300.0,
        env="RECHARGE_NOTIFY_MAX_SKEW",
        help="seconds a notification's Wechatpay-Timestamp may differ from our clock",
    )
    remote_attempts: int = setting(
        3, env="RECHARGE_REMOTE_ATTEMPTS", help="attempts per remote call whose outcome stays unknown"
    )
    remote_deadline: float = setting(
        3.0, env="RECHARGE_REMOTE_DEADLINE", help="seconds per attempt of a remote call (deadline)"
    )
    remote_backoff: float = setting(
        0.2,
        env="RECHARGE_REMOTE_BACKOFF",
        help="seconds before the 2nd attempt; doubled each time, with jitter",
    )
    remote_backoff_max: float = setting(
        5.0, env="RECHARGE_REMOTE_BACKOFF_MAX", help="upper bound of one retry backoff, seconds"
    )
    confirm_attempts: int = setting(
        3,
        env="RECHARGE_CONFIRM_ATTEMPTS",
        help="ConfirmRecharge attempts after a payment before CREDIT_UNKNOWN",
    )
    confirm_backoff: float = setting(
        0.2,
        env="RECHARGE_CONFIRM_BACKOFF",
        help="seconds before the 2nd confirm attempt; doubled, with jitter",
    )
    confirm_deadline: float = setting(
        2.0, env="RECHARGE_CONFIRM_DEADLINE", help="seconds per ConfirmRecharge attempt (deadline)"
    )
    outbox_interval: float = setting(
        0.5, env="RECHARGE_OUTBOX_INTERVAL", help="seconds between outbox dispatcher polls"
    )
    outbox_backoff: float = setting(
        1.0,
        env="RECHARGE_OUTBOX_BACKOFF",
        help="seconds before a failed follow-up is retried; doubled each time",
    )
    outbox_backoff_max: float = setting(
        300.0, env="RECHARGE_OUTBOX_BACKOFF_MAX", help="upper bound of the follow-up retry backoff, seconds"
    )
    outbox_max_attempts: int = setting(
        12, env="RECHARGE_OUTBOX_MAX_ATTEMPTS", help="delivery attempts before a follow-up is marked dead"
    )
    outbox_deadline: float = setting(
        3.0, env="RECHARGE_OUTBOX_DEADLINE", help="seconds per follow-up delivery attempt (deadline)"
    )
    outbox_lease: float = setting(
        30.0,
        env="RECHARGE_OUTBOX_LEASE",
        help="seconds a claimed follow-up stays reserved to this process (then another may take it)",
    )
    outbox_batch: int = setting(
        20, env="RECHARGE_OUTBOX_BATCH", help="follow-ups claimed per dispatcher poll"
    )
    callback_official_account: str = setting(
        "",
        env="RECHARGE_CALLBACK_OFFICIAL_ACCOUNT",
        help="host:port of the official account's RechargeCallbacks; empty = skip (recorded)",
    )
    callback_pos: str = setting(
        "", env="RECHARGE_CALLBACK_POS", help="host:port of the POS gateway's RechargeCallbacks; empty = skip"
    )
    callback_third_party: str = setting(
        "",
        env="RECHARGE_CALLBACK_THIRD_PARTY",
        help="host:port of the partner's RechargeCallbacks; empty = skip",
    )
    sentinel_interval: float = setting(
        600.0, env="RECHARGE_SENTINEL_INTERVAL", help="seconds between sentinel runs (no overlap, coalesced)"
    )
    hold: float = setting(
        3600.0,
        env="RECHARGE_HOLD",
        help="seconds an order must sit unchanged before the sentinel touches it (the article's 1 hour)",
    )
    on_pending: str = setting(
        "credit",
        env="RECHARGE_ON_PENDING",
        help="a paid order whose pre-recharge is still RECHARGING: 'credit' (confirm again, the "
        "customer paid to top up) or 'refund' (void first, then refund)",
    )
    max_attempts: int = setting(
        10,
        env="RECHARGE_MAX_ATTEMPTS",
        help="undecided processing visits (notify path and sentinel) before MANUAL_REVIEW",
    )
    max_age: float = setting(
        86400.0,
        env="RECHARGE_MAX_AGE",
        help="seconds after creation an order still undecided goes to MANUAL_REVIEW",
    )
    sentinel_batch: int = setting(
        500,
        env="RECHARGE_SENTINEL_BATCH",
        help="orders a sentinel run claims at a time (it claims again while batches come back full)",
    )
    sentinel_concurrency: int = setting(
        64,
        env="RECHARGE_SENTINEL_CONCURRENCY",
        help="orders processed at once within one sentinel run (their writes share group commits)",
    )
    lease: float = setting(
        60.0,
        env="RECHARGE_LEASE",
        help="seconds a sentinel claim on an order lasts (renewed before an order is worked on once "
        "half of it has passed; a crashed or cancelled run's claims simply expire)",
    )
    node_id: str = setting(
        "",
        env="RECHARGE_NODE_ID",
        help="name of this process, written as the owner of sentinel and outbox leases; empty = host-pid",
    )
    grace: float = setting(5.0, env="RECHARGE_GRACE", help="seconds to finish in-flight RPCs on shutdown")
    log_level: str = setting("info", env="RECHARGE_LOG_LEVEL", help="debug, info, warning, error")
    log_format: str = setting("console", env="RECHARGE_LOG_FORMAT", help="console or json")

    def validate(self) -> None:
        parse_listen(self.listen)
        parse_listen(self.card_target)
        parse_listen(self.payment_target)
        for name in ("callback_official_account", "callback_pos", "callback_third_party"):
            target = getattr(self, name)
            if target:
                parse_listen(target)
        if self.on_pending not in ("credit", "refund"):
            raise ValueError("--on-pending: must be 'credit' or 'refund'")
        for name in (
            "remote_attempts",
            "confirm_attempts",
            "outbox_max_attempts",
            "outbox_batch",
            "max_attempts",
            "sentinel_batch",
            "sentinel_concurrency",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')}: must be at least 1")
        for name in (
            "order_expiry",
            "notify_max_skew",
            "remote_deadline",
            "confirm_deadline",
            "outbox_interval",
            "outbox_deadline",
            "outbox_lease",
            "sentinel_interval",
            "max_age",
            "lease",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')}: must be positive")
        if self.hold < 0:
            raise ValueError("--hold: must not be negative")
