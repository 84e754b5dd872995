"""WeChat Pay simulator settings (see ``python -m wechat_mock --help``).

Merchants: ``--mchid``/``--appid`` are the service provider's (服务商) ``sp_mchid``/``sp_appid``;
partner-mode requests name that sp_mchid and any sub_mchid of 6-32 digits (real WeChat also
requires the sub-merchant to be bound to the provider). ``--direct-merchants`` lists the merchants
served in direct mode, each with its own keys. ``--keys-dir`` keeps WeChat's private side in
``platform/`` and writes each merchant's bundle (what the merchant holds) in ``merchant/`` and
``merchant/direct/<mchid>/`` (``wechat_mock.adapters.keys``).
"""

from __future__ import annotations

from dataclasses import dataclass

from rc_common.db import MAX_OVERFLOW, POOL_SIZE
from rc_common.settings import parse_listen, setting
from rc_common.tls import check_listen_setting, is_loopback
from wechat_mock.domain.merchants import MCHID

#: WeChat's notification retry schedule, in seconds (15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h).
WECHAT_NOTIFY_SCHEDULE = (
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600
)  # fmt: skip


@dataclass(frozen=True)
class WechatSettings:
    listen: str = setting("127.0.0.1:50053", env="WECHAT_LISTEN", help="host:port to serve gRPC on")
    tls_dir: str = setting(
        "",
        env="WECHAT_TLS_DIR",
        help="directory with ca.crt, tls.crt, tls.key (python -m scripts.certs): serve mutual TLS and "
        "present tls.crt to the services this one calls; empty = plaintext, loopback addresses only",
    )
    auth_key_file: str = setting(
        "",
        env="WECHAT_AUTH_KEY_FILE",
        help="file with the key operator tokens are verified with (python -m scripts.tokens); empty = "
        "no token is accepted, so no operator or test call either",
    )
    db: str = setting(
        "sqlite+aiosqlite:///var/wechat.db", env="WECHAT_DB", help="SQLAlchemy async database URL"
    )
    db_pool_size: int = setting(
        POOL_SIZE,
        env="WECHAT_DB_POOL_SIZE",
        help="PostgreSQL connections this process keeps open (ignored for SQLite)",
    )
    db_max_overflow: int = setting(
        MAX_OVERFLOW,
        env="WECHAT_DB_MAX_OVERFLOW",
        help="PostgreSQL connections opened beyond --db-pool-size under load (ignored for SQLite)",
    )
    notify_target: str = setting(
        "127.0.0.1:50051",
        env="WECHAT_NOTIFY_TARGET",
        help="host:port of the merchant's PaymentNotifications service (the recharge center); "
        "several, comma separated, for its replicas: each attempt starts at the next in turn and "
        "goes on to the following ones while one gives no answer (RPC error, timeout); a FAIL is "
        "retried on the schedule; empty = none",
    )
    keys_dir: str = setting(
        "var/wechat-keys",
        env="WECHAT_KEYS_DIR",
        help="WeChat's keys: its platform private keys in <keys-dir>/platform/ (the product never "
        "reads them), and the merchant bundles it hands out (platform public key and id, APIv3 key, "
        "the merchant's own key and certificate serial, mchid): the provider's in <keys-dir>/merchant/ "
        "(the recharge center's --wechat-keys-dir), each direct merchant's in "
        "<keys-dir>/merchant/direct/<mchid>/ (all created on first start)",
    )
    mchid: str = setting(
        "1900000109",
        env="WECHAT_MCHID",
        help="the service provider's merchant id (sp_mchid): partner-mode requests must name it, with "
        "any sub_mchid of 6-32 digits (real WeChat also requires the sub-merchant to be bound to the "
        "provider; not simulated)",
    )
    appid: str = setting(
        "wxd678efh567hg6787",
        env="WECHAT_APPID",
        help="the service provider's app id (sp_appid) put in partner-mode transactions; also the app "
        "id of direct merchants listed without one",
    )
    direct_merchants: str = setting(
        "",
        env="WECHAT_DIRECT_MERCHANTS",
        help="merchants served in direct mode (their own mchid, app id and keys), comma separated: "
        "MCHID or MCHID:APPID (APPID defaults to --appid); empty = none",
    )
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
    page_token_key_file: str = setting(
        "",
        env="WECHAT_PAGE_TOKEN_KEY_FILE",
        help="file holding the key that MACs page tokens (at least 16 bytes); empty = the "
        "RC_PAGE_TOKEN_KEY environment variable, else a random key per process (replicas "
        "behind one address need one key)",
    )
    grace: float = setting(5.0, env="WECHAT_GRACE", help="seconds to finish in-flight RPCs on shutdown")
    max_concurrent_calls: int = setting(
        256,
        env="WECHAT_MAX_CONCURRENT_CALLS",
        help="calls of one method served at once (0 = no admission control)",
    )
    max_queued_calls: int = setting(
        1024,
        env="WECHAT_MAX_QUEUED_CALLS",
        help="calls of one method waiting for a slot; more are answered RESOURCE_EXHAUSTED OVERLOADED",
    )
    max_queue_wait: float = setting(
        2.0,
        env="WECHAT_MAX_QUEUE_WAIT",
        help="seconds a call waits for a slot (less when its deadline is sooner)",
    )
    http_listen: str = setting(
        "",
        env="WECHAT_HTTP_LISTEN",
        help="host:port to serve WeChat Pay APIv3 over HTTPS on (the HTTP facade: the same service "
        "layer as the gRPC PaymentGateway; merchants' requests must be signed); empty = off",
    )
    http_tls_dir: str = setting(
        "",
        env="WECHAT_HTTP_TLS_DIR",
        help="directory with tls.crt and tls.key for the HTTP facade; empty = a throwaway "
        "self-signed certificate made at start (for 127.0.0.1, ::1, localhost and the listen host; "
        "kept across restarts while it still fits), written to <keys-dir>/http-tls/tls.crt for "
        "test clients to trust",
    )
    http_plaintext: bool = setting(
        False,
        env="WECHAT_HTTP_PLAINTEXT",
        help="serve the HTTP facade as plain http:// (loopback --http-listen only)",
    )
    http_max_clock_skew: float = setting(
        300.0,
        env="WECHAT_HTTP_MAX_CLOCK_SKEW",
        help="seconds a merchant request's signature timestamp may differ from the simulator's "
        "clock (WeChat: 5 minutes); older or newer is 401 SIGN_ERROR",
    )
    notify_ca_file: str = setting(
        "",
        env="WECHAT_NOTIFY_CA_FILE",
        help="CA certificates (PEM) trusted for HTTPS notification delivery to a notify_url; empty = "
        "the system's trust store (verification is never off)",
    )
    metrics_listen: str = setting(
        "",
        env="WECHAT_METRICS_LISTEN",
        help="host:port to serve Prometheus metrics on (GET /metrics); empty = none; plaintext, so "
        "keep it on loopback or a private network",
    )
    log_level: str = setting("info", env="WECHAT_LOG_LEVEL", help="debug, info, warning, error")
    log_format: str = setting("console", env="WECHAT_LOG_FORMAT", help="console or json")

    @property
    def notify_targets(self) -> tuple[str, ...]:
        """The ``--notify-target`` entries, in order (the recharge center's replicas)."""
        return tuple(entry.strip() for entry in self.notify_target.split(",") if entry.strip())

    @property
    def direct_accounts(self) -> dict[str, str]:
        """The direct merchants: mchid -> app id."""
        accounts: dict[str, str] = {}
        for entry in self.direct_merchants.split(","):
            mchid, _, appid = entry.strip().partition(":")
            if mchid:
                accounts[mchid] = appid.strip() or self.appid
        return accounts

    def _validate_merchants(self) -> None:
        if not MCHID.match(self.mchid):
            raise ValueError("--mchid: must be 6-32 digits")
        seen: set[str] = set()
        for entry in self.direct_merchants.split(","):
            mchid, colon, appid = entry.strip().partition(":")
            if not mchid and not colon:
                continue
            if not MCHID.match(mchid):
                raise ValueError(f"--direct-merchants: {mchid!r} is not a mchid (6-32 digits)")
            if colon and not appid.strip():
                raise ValueError(f"--direct-merchants: {mchid}: empty app id after ':'")
            if mchid == self.mchid:
                raise ValueError(f"--direct-merchants: {mchid} is the service provider's --mchid")
            if mchid in seen:
                raise ValueError(f"--direct-merchants: {mchid} is listed twice")
            seen.add(mchid)

    def _validate_notify_targets(self) -> None:
        if not self.notify_target.strip():
            return
        seen: set[str] = set()
        for entry in (entry.strip() for entry in self.notify_target.split(",")):
            if not entry:
                raise ValueError(f"--notify-target: empty entry in {self.notify_target!r}")
            try:
                _host, port = parse_listen(entry)
            except ValueError:
                raise ValueError(f"--notify-target: {entry!r} is not host:port") from None
            if not 0 < port < 65536:
                raise ValueError(f"--notify-target: {entry!r}: port must be 1-65535")
            if entry in seen:
                raise ValueError(f"--notify-target: {entry} is listed twice")
            seen.add(entry)

    def _validate_http(self) -> None:
        if not self.http_listen:
            if self.http_plaintext or self.http_tls_dir:
                raise ValueError("--http-plaintext / --http-tls-dir: need --http-listen")
            return
        try:
            host, port = parse_listen(self.http_listen)
        except ValueError:
            raise ValueError(f"--http-listen: {self.http_listen!r} is not host:port") from None
        if not 0 <= port < 65536:
            raise ValueError(f"--http-listen: {self.http_listen!r}: port must be 0-65535")
        if self.http_plaintext and self.http_tls_dir:
            raise ValueError("--http-plaintext and --http-tls-dir: choose one")
        if self.http_plaintext and not is_loopback(host):
            raise ValueError(
                f"--http-plaintext: refusing plain HTTP on {self.http_listen}: loopback addresses only "
                "(127.0.0.1, ::1, localhost); serve HTTPS (--http-tls-dir)"
            )
        if self.http_max_clock_skew <= 0:
            raise ValueError("--http-max-clock-skew: must be positive")

    def validate(self) -> None:
        parse_listen(self.listen)
        if self.metrics_listen:
            parse_listen(self.metrics_listen)
        self._validate_http()
        check_listen_setting(self.listen, self.tls_dir)
        if self.db_pool_size < 1 or self.db_max_overflow < 0:
            raise ValueError("--db-pool-size must be at least 1, --db-max-overflow not negative")
        self._validate_merchants()
        self._validate_notify_targets()
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
