"""Recharge center settings (see ``python -m recharge_service --help``), grouped by concern.

Every duration is a setting, so tests and chaos runs can shrink them to fractions of a second. The
defaults live here and nowhere else: each policy object (``RetryPolicy``, ``SentinelPolicy``,
``OutboxPolicy``) is built only from its group by its ``from_settings``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rc_common.admission import parse_overrides
from rc_common.db import MAX_OVERFLOW, POOL_SIZE
from rc_common.settings import (
    InvalidSetting,
    group,
    parse_listen,
    require_at_least_one,
    require_positive,
    setting,
)
from rc_common.tls import check_listen_setting, plaintext_refusal


class PaymentBackend(enum.StrEnum):
    """How the recharge center talks to WeChat Pay."""

    GRPC = "grpc"  # our gRPC contract (the simulator's PaymentGateway)
    WECHATPAY_V3 = "wechatpay-v3"  # WeChat Pay APIv3 over HTTPS (WeChat itself, or the simulator's facade)


class OnPending(enum.StrEnum):
    """What the sentinel does with a paid order whose pre-recharge is still RECHARGING."""

    CREDIT = "credit"  # confirm again: the customer paid to top up
    REFUND = "refund"  # void first, then refund


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = setting(
        "sqlite+aiosqlite:///var/recharge.db",
        env="RECHARGE_DB",
        flag="db",
        help="SQLAlchemy async database URL",
    )
    pool_size: int = setting(
        POOL_SIZE,
        env="RECHARGE_DB_POOL_SIZE",
        flag="db_pool_size",
        help="PostgreSQL connections this process keeps open (ignored for SQLite); with "
        "--db-max-overflow, per replica: see the README on sizing against max_connections",
    )
    max_overflow: int = setting(
        MAX_OVERFLOW,
        env="RECHARGE_DB_MAX_OVERFLOW",
        flag="db_max_overflow",
        help="PostgreSQL connections opened beyond --db-pool-size under load, closed when returned "
        "(ignored for SQLite)",
    )

    def validate(self) -> None:
        require_at_least_one(self, "pool_size")
        if self.max_overflow < 0:
            raise InvalidSetting("max_overflow", "must not be negative")


@dataclass(frozen=True)
class RemoteSettings:
    """Calls to the card system and WeChat Pay (other than the confirm after a payment)."""

    card_target: str = setting(
        "127.0.0.1:50052", env="RECHARGE_CARD_TARGET", flag="card_target", help="card system host:port"
    )
    payment_target: str = setting(
        "127.0.0.1:50053",
        env="RECHARGE_PAYMENT_TARGET",
        flag="payment_target",
        help="WeChat Pay (simulator) host:port",
    )
    attempts: int = setting(
        3, env="RECHARGE_REMOTE_ATTEMPTS", help="attempts per remote call whose outcome stays unknown"
    )
    deadline: float = setting(
        3.0, env="RECHARGE_REMOTE_DEADLINE", help="seconds per attempt of a remote call (deadline)"
    )
    backoff: float = setting(
        0.2,
        env="RECHARGE_REMOTE_BACKOFF",
        help="seconds before the 2nd attempt; doubled each time, with jitter",
    )
    backoff_max: float = setting(
        5.0, env="RECHARGE_REMOTE_BACKOFF_MAX", help="upper bound of one retry backoff, seconds"
    )
    deadline_margin: float = setting(
        0.2,
        env="RECHARGE_REMOTE_DEADLINE_MARGIN",
        help="seconds kept out of a caller's remaining time: a call made while serving a request "
        "gets min(--remote-deadline, caller's remaining - this), and is not started when that is <= 0",
    )

    def validate(self) -> None:
        parse_listen(self.card_target)
        parse_listen(self.payment_target)
        require_at_least_one(self, "attempts")
        require_positive(self, "deadline")
        if self.deadline_margin < 0:
            raise InvalidSetting("deadline_margin", "must not be negative")


@dataclass(frozen=True)
class ConfirmSettings:
    """ConfirmRecharge right after a payment (the notification path)."""

    attempts: int = setting(
        3,
        env="RECHARGE_CONFIRM_ATTEMPTS",
        help="ConfirmRecharge attempts after a payment before CREDIT_UNKNOWN",
    )
    deadline: float = setting(
        2.0, env="RECHARGE_CONFIRM_DEADLINE", help="seconds per ConfirmRecharge attempt (deadline)"
    )
    backoff: float = setting(
        0.2,
        env="RECHARGE_CONFIRM_BACKOFF",
        help="seconds before the 2nd confirm attempt; doubled, with jitter",
    )
    backoff_max: float = setting(
        5.0, env="RECHARGE_CONFIRM_BACKOFF_MAX", help="upper bound of one confirm backoff, seconds"
    )
    deadline_margin: float = setting(
        0.2,
        env="RECHARGE_CONFIRM_DEADLINE_MARGIN",
        help="seconds kept out of a caller's remaining time when a confirm runs on a caller's behalf "
        "(an operator's action); the confirm after a payment runs after the answer, without one",
    )

    def validate(self) -> None:
        require_at_least_one(self, "attempts")
        require_positive(self, "deadline")
        if self.deadline_margin < 0:
            raise InvalidSetting("deadline_margin", "must not be negative")


@dataclass(frozen=True)
class NotifySettings:
    """Payment notifications from WeChat Pay: the provider's account and keys (a direct-mode
    merchant's keys are named by its configuration)."""

    wechat_keys_dir: str = setting(
        "var/wechat-keys/merchant",
        env="RECHARGE_WECHAT_KEYS_DIR",
        flag="wechat_keys_dir",
        help="the provider's merchant bundle (the WeChat simulator writes it in <keys-dir>/merchant): "
        "WeChat's platform public key (platform_public_key.pem), its id (public_key_id.txt), the APIv3 "
        "key (apiv3_key.txt) and the merchant's own key; the service refuses to start if it holds "
        "WeChat's platform private key",
    )
    wechat_mchid: str = setting(
        "1900000109",
        env="RECHARGE_WECHAT_MCHID",
        flag="wechat_mchid",
        help="the provider's WeChat Pay merchant id (sp_mchid): partner-mode merchants are paid "
        "under it with their sub_mchid, and their notifications must carry it",
    )
    max_skew: float = setting(
        300.0,
        env="RECHARGE_NOTIFY_MAX_SKEW",
        help="seconds a notification's (or an APIv3 answer's) Wechatpay-Timestamp may differ from our clock",
    )
    http_listen: str = setting(
        "",
        env="RECHARGE_NOTIFY_HTTP_LISTEN",
        help="host:port to receive WeChat Pay's HTTP notifications on (POST --notify-http-path); "
        "empty = none (the gRPC Notify stays); plaintext only on a loopback address",
    )
    http_tls_dir: str = setting(
        "",
        env="RECHARGE_NOTIFY_HTTP_TLS_DIR",
        help="directory with tls.crt (the certificate chain WeChat sees) and tls.key: serve the "
        "notification endpoint over HTTPS; empty = plaintext, loopback addresses only",
    )
    http_path: str = setting(
        "/wechatpay/notify",
        env="RECHARGE_NOTIFY_HTTP_PATH",
        help="the path notifications are POSTed to (the path of --wechatpay-notify-url)",
    )
    http_max_body: int = setting(
        65536,
        env="RECHARGE_NOTIFY_HTTP_MAX_BODY",
        help="bytes a notification body may have; a larger one is answered 413 FAIL unread",
    )
    http_read_timeout: float = setting(
        10.0,
        env="RECHARGE_NOTIFY_HTTP_READ_TIMEOUT",
        help="seconds a notification's body may take to arrive before it is answered 408 FAIL",
    )

    def validate(self) -> None:
        require_positive(self, "max_skew", "http_read_timeout")
        require_at_least_one(self, "http_max_body")
        if not self.http_path.startswith("/"):
            raise InvalidSetting("http_path", "must start with /")
        if self.http_listen:
            parse_listen(self.http_listen)
            refusal = "" if self.http_tls_dir else plaintext_refusal(self.http_listen)
            if refusal:
                raise InvalidSetting("http_tls_dir", refusal.replace("--tls-dir", "--notify-http-tls-dir"))


@dataclass(frozen=True)
class WechatPaySettings:
    """Which wire carries the payment calls, and WeChat Pay APIv3's endpoint and ids when it is
    HTTPS (the keys are the merchant bundle's: --wechat-keys-dir, a direct merchant's keys_dir)."""

    backend: PaymentBackend = setting(
        PaymentBackend.GRPC,
        env="RECHARGE_PAYMENT_BACKEND",
        flag="payment_backend",
        help="'grpc' (the simulator's gRPC contract at --payment-target) or 'wechatpay-v3' (APIv3 "
        "over HTTPS at --wechatpay-base-url)",
    )
    base_url: str = setting(
        "https://api.mch.weixin.qq.com",
        env="RECHARGE_WECHATPAY_BASE_URL",
        help="APIv3 endpoint (https://host[:port]; http:// to a loopback host only, for the simulator)",
    )
    ca_file: str = setting(
        "",
        env="RECHARGE_WECHATPAY_CA_FILE",
        help="PEM file of the CAs the APIv3 endpoint's certificate must chain to; empty = the "
        "system's trust store (verification is always on)",
    )
    appid: str = setting(
        "",
        env="RECHARGE_WECHATPAY_APPID",
        help="appid for direct-mode merchants whose configuration names none",
    )
    sp_appid: str = setting(
        "",
        env="RECHARGE_WECHATPAY_SP_APPID",
        help="the provider's appid (sp_appid) in partner-mode prepay requests",
    )
    notify_url: str = setting(
        "",
        env="RECHARGE_WECHATPAY_NOTIFY_URL",
        help="the public HTTPS URL WeChat posts payment and refund notifications to (ours, served "
        "by --notify-http-listen behind TLS); required with --payment-backend wechatpay-v3",
    )

    def validate(self) -> None:
        if self.backend is not PaymentBackend.WECHATPAY_V3:
            return
        for name, url in (("base_url", self.base_url), ("notify_url", self.notify_url)):
            refusal = _url_refusal(url)
            if refusal:
                raise InvalidSetting(name, refusal)
        if urlsplit(self.base_url).path not in ("", "/"):
            raise InvalidSetting("base_url", f"{self.base_url!r}: expected https://host[:port], no path")
        if self.ca_file and not Path(self.ca_file).is_file():
            raise InvalidSetting("ca_file", f"{self.ca_file}: no such file")


def _url_refusal(url: str) -> str:
    """Why ``url`` cannot name an APIv3 endpoint or our notification URL ("" when it can)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{url!r}: expected an https:// URL"
    if parts.scheme == "http" and plaintext_refusal(f"{parts.hostname}:0"):
        return f"{url!r}: plain http is for loopback hosts only; use https"
    return ""


@dataclass(frozen=True)
class OutboxSettings:
    """Follow-ups after a credit or refund: template messages, and callbacks to the targets each
    merchant's configuration names per channel."""

    interval: float = setting(
        0.5, env="RECHARGE_OUTBOX_INTERVAL", help="seconds between outbox dispatcher polls"
    )
    backoff: float = setting(
        1.0,
        env="RECHARGE_OUTBOX_BACKOFF",
        help="seconds before a failed follow-up is retried; doubled each time",
    )
    backoff_max: float = setting(
        300.0, env="RECHARGE_OUTBOX_BACKOFF_MAX", help="upper bound of the follow-up retry backoff, seconds"
    )
    max_attempts: int = setting(
        12, env="RECHARGE_OUTBOX_MAX_ATTEMPTS", help="delivery attempts before a follow-up is marked dead"
    )
    deadline: float = setting(
        3.0, env="RECHARGE_OUTBOX_DEADLINE", help="seconds per follow-up delivery attempt (deadline)"
    )
    lease: float = setting(
        30.0,
        env="RECHARGE_OUTBOX_LEASE",
        help="seconds a claimed follow-up stays reserved to this process (then another may take it)",
    )
    batch: int = setting(20, env="RECHARGE_OUTBOX_BATCH", help="follow-ups claimed per dispatcher poll")

    def validate(self) -> None:
        require_at_least_one(self, "max_attempts", "batch")
        require_positive(self, "interval", "deadline", "lease")


@dataclass(frozen=True)
class SentinelSettings:
    """The sentinel: the periodic pass over orders nobody finished."""

    interval: float = setting(
        600.0, env="RECHARGE_SENTINEL_INTERVAL", help="seconds between sentinel runs (no overlap, coalesced)"
    )
    hold: float = setting(
        3600.0,
        env="RECHARGE_HOLD",
        flag="hold",
        help="seconds an order must sit unchanged before the sentinel touches it (the article's 1 hour)",
    )
    on_pending: OnPending = setting(
        OnPending.CREDIT,
        env="RECHARGE_ON_PENDING",
        flag="on_pending",
        help="a paid order whose pre-recharge is still RECHARGING: 'credit' (confirm again, the "
        "customer paid to top up) or 'refund' (void first, then refund)",
    )
    max_attempts: int = setting(
        10,
        env="RECHARGE_MAX_ATTEMPTS",
        flag="max_attempts",
        help="undecided processing visits (notify path and sentinel) before MANUAL_REVIEW",
    )
    max_age: float = setting(
        86400.0,
        env="RECHARGE_MAX_AGE",
        flag="max_age",
        help="seconds after creation an order still undecided goes to MANUAL_REVIEW",
    )
    batch: int = setting(
        500,
        env="RECHARGE_SENTINEL_BATCH",
        help="orders a sentinel run claims at a time (it claims again while batches come back full)",
    )
    concurrency: int = setting(
        64,
        env="RECHARGE_SENTINEL_CONCURRENCY",
        help="orders processed at once within one sentinel run (their writes share group commits)",
    )
    void_delay: float = setting(
        30.0,
        env="RECHARGE_VOID_DELAY",
        flag="void_delay",
        help="seconds a CREATED order left by its request (caller gone, pre-recharge or prepay "
        "unknown or refused) waits for a retry with the same key before it is closed and its "
        "pre-recharge voided (not one --hold later); expired unpaid orders are closed at expiry",
    )
    lease: float = setting(
        60.0,
        env="RECHARGE_LEASE",
        flag="lease",
        help="seconds a sentinel claim on an order lasts (renewed before an order is worked on once "
        "half of it has passed; a crashed or cancelled run's claims simply expire)",
    )

    def validate(self) -> None:
        require_at_least_one(self, "max_attempts", "batch", "concurrency")
        require_positive(self, "interval", "max_age", "lease")
        if self.void_delay < 0:
            raise InvalidSetting("void_delay", "must not be negative")
        if self.hold < 0:
            raise InvalidSetting("hold", "must not be negative")


@dataclass(frozen=True)
class LimitSettings:
    """Overload and fairness: admission control per method, and caps on open unpaid orders (the
    merchant's own limits are in its configuration)."""

    max_concurrent_calls: int = setting(
        64,
        env="RECHARGE_MAX_CONCURRENT_CALLS",
        flag="max_concurrent_calls",
        help="calls of one method served at once (0 = no admission control)",
    )
    max_queued_calls: int = setting(
        128,
        env="RECHARGE_MAX_QUEUED_CALLS",
        flag="max_queued_calls",
        help="calls of one method waiting for a slot; more are answered RESOURCE_EXHAUSTED "
        "OVERLOADED at once",
    )
    max_queue_wait: float = setting(
        1.0,
        env="RECHARGE_MAX_QUEUE_WAIT",
        flag="max_queue_wait",
        help="seconds a call waits for a slot (less when its deadline is sooner) before it is "
        "answered RESOURCE_EXHAUSTED OVERLOADED",
    )
    admission_overrides: str = setting(
        "Notify=256/1024",
        env="RECHARGE_ADMISSION_OVERRIDES",
        flag="admission_overrides",
        help="per-method limits, method=concurrent/queued, comma separated (method name or full "
        "name; concurrent 0 = not gated)",
    )
    max_open_orders_per_card: int = setting(
        3,
        env="RECHARGE_MAX_OPEN_ORDERS_PER_CARD",
        flag="max_open_orders_per_card",
        help="unpaid orders one card may have; beyond it only a payer with none open on the card may "
        "add one, so strangers cannot lock the owner out (0 = no cap)",
    )
    max_open_orders_per_payer: int = setting(
        10,
        env="RECHARGE_MAX_OPEN_ORDERS_PER_PAYER",
        flag="max_open_orders_per_payer",
        help="unpaid orders one payer (openid) may have within a merchant (0 = no cap)",
    )

    def validate(self) -> None:
        for name in (
            "max_concurrent_calls",
            "max_queued_calls",
            "max_open_orders_per_card",
            "max_open_orders_per_payer",
        ):
            if getattr(self, name) < 0:
                raise InvalidSetting(name, "must not be negative")
        if self.max_queue_wait < 0:
            raise InvalidSetting("max_queue_wait", "must not be negative")
        parse_overrides(self.admission_overrides)


@dataclass(frozen=True)
class ReconcileSettings:
    """The daily three-way reconciliation (WeChat's bill, our orders, the card journal)."""

    enabled: bool = setting(
        False,
        env="RECHARGE_RECONCILE_ENABLED",
        flag="reconcile_enabled",
        help="run the daily reconciliation of the previous business day (+08:00) at --reconcile-at",
    )
    at: str = setting(
        "10:00",
        env="RECHARGE_RECONCILE_AT",
        flag="reconcile_at",
        help="HH:MM in +08:00 when the daily job runs (after WeChat's bill of the previous day is ready)",
    )
    deadline: float = setting(
        30.0,
        env="RECHARGE_RECONCILE_DEADLINE",
        flag="reconcile_deadline",
        help="seconds each call reading a side (one bill, one journal page, one pre-recharge) may take",
    )

    def validate(self) -> None:
        require_positive(self, "deadline")
        try:
            reconcile_time(self.at)
        except ValueError as exc:
            raise InvalidSetting("at", str(exc)) from None


@dataclass(frozen=True)
class OpsSettings:
    """Operators' calls (RechargeOps): four eyes on refunds, the console's health page."""

    four_eyes_refund_above: int = setting(
        50_000,
        env="RECHARGE_FOUR_EYES_REFUND_ABOVE",
        flag="four_eyes_refund_above",
        help="fen: an operator's REFUND (ResolveAnomaly) of an order whose pay amount is above this "
        "does not run; it waits as an approval until a second operator with the approver role "
        "approves it (DecideApproval, `ops approve`); 0 = every refund needs approval "
        "(default 50000 = ¥500)",
    )
    health_deadline: float = setting(
        1.0,
        env="RECHARGE_OPS_HEALTH_DEADLINE",
        help="seconds GetOpsHealth waits for each health check (card system, WeChat Pay, database); "
        "no answer by then is UNKNOWN",
    )

    def validate(self) -> None:
        if self.four_eyes_refund_above < 0:
            raise InvalidSetting("four_eyes_refund_above", "must not be negative (0: every refund)")
        require_positive(self, "health_deadline")


def reconcile_time(text: str) -> tuple[int, int]:
    """``HH:MM`` as (hour, minute); ValueError otherwise."""
    hour, sep, minute = text.partition(":")
    if not (sep and hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
        raise ValueError("must be HH:MM (24-hour clock)")
    return int(hour), int(minute)


@dataclass(frozen=True)
class RechargeSettings:
    listen: str = setting("127.0.0.1:50051", env="RECHARGE_LISTEN", help="host:port to serve gRPC on")
    tls_dir: str = setting(
        "",
        env="RECHARGE_TLS_DIR",
        help="directory with ca.crt, tls.crt, tls.key (python -m scripts.certs): serve mutual TLS and "
        "present tls.crt to the services this one calls; empty = plaintext, loopback addresses only",
    )
    auth_key_file: str = setting(
        "",
        env="RECHARGE_AUTH_KEY_FILE",
        help="file with the key operator tokens are verified with (python -m scripts.tokens); empty = "
        "no token is accepted, so no operator or test call either",
    )
    node_id: str = setting(
        "",
        env="RECHARGE_NODE_ID",
        help="name of this replica, written as the owner of sentinel and outbox leases, on every timeline "
        "row and in every log line (node=); empty = host-pid",
    )
    grace: float = setting(5.0, env="RECHARGE_GRACE", help="seconds to finish in-flight RPCs on shutdown")
    merchant_cache_ttl: float = setting(
        2.0,
        env="RECHARGE_MERCHANT_CACHE_TTL",
        help="seconds a merchant's current configuration is cached: a change reaches new orders of "
        "other replicas within this time, without a restart",
    )
    page_token_key_file: str = setting(
        "",
        env="RECHARGE_PAGE_TOKEN_KEY_FILE",
        help="file holding the key that MACs page tokens (at least 16 bytes); empty = the "
        "RC_PAGE_TOKEN_KEY environment variable, else a random key per process (replicas "
        "behind one address need one key)",
    )
    metrics_listen: str = setting(
        "",
        env="RECHARGE_METRICS_LISTEN",
        help="host:port to serve Prometheus metrics on (GET /metrics); empty = none; plaintext, so "
        "keep it on loopback or a private network",
    )
    metrics_cache: float = setting(
        5.0,
        env="RECHARGE_METRICS_CACHE",
        help="seconds the gauges read from the database (orders by status, oldest ages, outbox "
        "backlog) are reused between scrapes: at most one query per period",
    )
    log_level: str = setting("info", env="RECHARGE_LOG_LEVEL", help="debug, info, warning, error")
    log_format: str = setting("console", env="RECHARGE_LOG_FORMAT", help="console or json")
    database: DatabaseSettings = group(DatabaseSettings, title="database")
    remote: RemoteSettings = group(RemoteSettings, prefix="remote", title="remote calls")
    confirm: ConfirmSettings = group(ConfirmSettings, prefix="confirm", title="confirm after payment")
    notify: NotifySettings = group(NotifySettings, prefix="notify", title="payment notifications")
    wechatpay: WechatPaySettings = group(WechatPaySettings, prefix="wechatpay", title="WeChat Pay APIv3")
    outbox: OutboxSettings = group(OutboxSettings, prefix="outbox", title="follow-ups (outbox)")
    sentinel: SentinelSettings = group(SentinelSettings, prefix="sentinel", title="sentinel")
    reconcile: ReconcileSettings = group(ReconcileSettings, prefix="reconcile", title="daily reconciliation")
    limits: LimitSettings = group(LimitSettings, title="overload and open-order caps")
    ops: OpsSettings = group(OpsSettings, prefix="ops", title="operators: four eyes, health")

    def validate(self) -> None:
        parse_listen(self.listen)
        check_listen_setting(self.listen, self.tls_dir)
        if self.merchant_cache_ttl < 0:
            raise InvalidSetting("merchant_cache_ttl", "must not be negative")
        if self.metrics_listen:
            parse_listen(self.metrics_listen)
        if self.metrics_cache < 0:
            raise InvalidSetting("metrics_cache", "must not be negative")
