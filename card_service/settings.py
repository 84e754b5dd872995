"""Card system settings (flags and environment variables; see ``python -m card_service --help``)."""

from __future__ import annotations

from dataclasses import dataclass

from rc_common.db import MAX_OVERFLOW, POOL_SIZE
from rc_common.settings import parse_listen, setting
from rc_common.tls import check_listen_setting


@dataclass(frozen=True)
class CardSettings:
    listen: str = setting("127.0.0.1:50052", env="CARD_LISTEN", help="host:port to serve gRPC on")
    tls_dir: str = setting(
        "",
        env="CARD_TLS_DIR",
        help="directory with ca.crt, tls.crt, tls.key (python -m scripts.certs): serve mutual TLS and "
        "present tls.crt to the services this one calls; empty = plaintext, loopback addresses only",
    )
    auth_key_file: str = setting(
        "",
        env="CARD_AUTH_KEY_FILE",
        help="file with the key operator tokens are verified with (python -m scripts.tokens); empty = "
        "no token is accepted, so no operator or test call either",
    )
    db: str = setting(
        "sqlite+aiosqlite:///var/card.db", env="CARD_DB", help="SQLAlchemy async database URL"
    )
    db_pool_size: int = setting(
        POOL_SIZE,
        env="CARD_DB_POOL_SIZE",
        help="PostgreSQL connections this process keeps open (ignored for SQLite)",
    )
    db_max_overflow: int = setting(
        MAX_OVERFLOW,
        env="CARD_DB_MAX_OVERFLOW",
        help="PostgreSQL connections opened beyond --db-pool-size under load (ignored for SQLite)",
    )
    faults: str = setting(
        "", env="CARD_FAULTS", help="fault profile to load at start (FaultPlan as JSON)"
    )
    page_token_key_file: str = setting(
        "",
        env="CARD_PAGE_TOKEN_KEY_FILE",
        help="file holding the key that MACs page tokens (at least 16 bytes); empty = the "
        "RC_PAGE_TOKEN_KEY environment variable, else a random key per process (replicas "
        "behind one address need one key)",
    )
    min_pay_fen: int = setting(
        100,
        env="CARD_MIN_PAY_FEN",
        help="default smallest top-up pay amount (for merchants whose rule leaves it 0)",
    )
    max_pay_fen: int = setting(
        5_000_000,
        env="CARD_MAX_PAY_FEN",
        help="default largest top-up pay amount (for merchants whose rule leaves it 0)",
    )
    balance_cap_fen: int = setting(
        20_000_000,
        env="CARD_BALANCE_CAP_FEN",
        help="default cap on a card's balance plus pending credits (for merchants whose rule "
        "leaves it 0)",
    )
    grace: float = setting(5.0, env="CARD_GRACE", help="seconds to finish in-flight RPCs on shutdown")
    max_concurrent_calls: int = setting(
        256,
        env="CARD_MAX_CONCURRENT_CALLS",
        help="calls of one method served at once (0 = no admission control)",
    )
    max_queued_calls: int = setting(
        1024,
        env="CARD_MAX_QUEUED_CALLS",
        help="calls of one method waiting for a slot; more are answered RESOURCE_EXHAUSTED OVERLOADED",
    )
    max_queue_wait: float = setting(
        2.0,
        env="CARD_MAX_QUEUE_WAIT",
        help="seconds a call waits for a slot (less when its deadline is sooner)",
    )
    metrics_listen: str = setting(
        "",
        env="CARD_METRICS_LISTEN",
        help="host:port to serve Prometheus metrics on (GET /metrics); empty = none; plaintext, so "
        "keep it on loopback or a private network",
    )
    log_level: str = setting("info", env="CARD_LOG_LEVEL", help="debug, info, warning, error")
    log_format: str = setting("console", env="CARD_LOG_FORMAT", help="console or json")

    def validate(self) -> None:
        parse_listen(self.listen)
        check_listen_setting(self.listen, self.tls_dir)
        if self.metrics_listen:
            parse_listen(self.metrics_listen)
        if self.db_pool_size < 1 or self.db_max_overflow < 0:
            raise ValueError("--db-pool-size must be at least 1, --db-max-overflow not negative")
        if not 0 < self.min_pay_fen <= self.max_pay_fen:
            raise ValueError("--min-pay-fen/--max-pay-fen: need 0 < min <= max")
