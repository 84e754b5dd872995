"""The console's settings (``python -m recharge_service.console --help``), grouped by concern.

Every duration is a setting: sessions, login throttling, the operator token minted per request and
the deadlines of the calls to the recharge center.
"""

from __future__ import annotations

from dataclasses import dataclass

from rc_common.settings import (
    InvalidSetting,
    group,
    parse_listen,
    require_at_least_one,
    require_positive,
    setting,
)
from rc_common.tls import check_listen_setting

#: Where ``add-operator`` and the console look for accounts unless told otherwise.
DEFAULT_ACCOUNTS_FILE = "var/console/accounts.json"


@dataclass(frozen=True)
class SessionSettings:
    """Operators' sessions: kept in this process's memory (a restart logs everyone out)."""

    idle: float = setting(
        900.0, env="CONSOLE_SESSION_IDLE", help="seconds without a request after which a session ends"
    )
    lifetime: float = setting(
        28800.0,
        env="CONSOLE_SESSION_LIFETIME",
        help="seconds after login a session ends however busy it is (the absolute lifetime)",
    )
    max_sessions: int = setting(
        10000,
        env="CONSOLE_SESSION_MAX",
        flag="session_max",
        help="sessions kept at most; a login beyond that ends the session used least recently",
    )

    def validate(self) -> None:
        require_positive(self, "idle", "lifetime")
        require_at_least_one(self, "max_sessions")
        if self.idle > self.lifetime:
            raise InvalidSetting("idle", "must not exceed --session-lifetime")


@dataclass(frozen=True)
class LoginSettings:
    """Login throttling, per account and peer address (unknown accounts alike)."""

    max_failures: int = setting(
        5, env="CONSOLE_LOGIN_MAX_FAILURES", help="failed logins in a row before the pair must wait"
    )
    lockout: float = setting(
        60.0,
        env="CONSOLE_LOGIN_LOCKOUT",
        help="seconds the pair waits after --login-max-failures failures; doubled each time it "
        "happens again without a success in between (at most --login-lockout-max)",
    )
    lockout_max: float = setting(3600.0, env="CONSOLE_LOGIN_LOCKOUT_MAX", help="the longest wait, seconds")
    form_lifetime: float = setting(
        3600.0,
        env="CONSOLE_LOGIN_FORM_LIFETIME",
        help="seconds a login page's form stays usable (its CSRF token lives in a cookie that long)",
    )

    def validate(self) -> None:
        require_at_least_one(self, "max_failures")
        require_positive(self, "lockout", "lockout_max", "form_lifetime")


@dataclass(frozen=True)
class CallSettings:
    """Calls to the recharge center (RechargeOps, RechargeCenter.GetRechargeOrder)."""

    deadline: float = setting(
        10.0, env="CONSOLE_CALL_DEADLINE", help="seconds for a read (lists, an order, its timeline)"
    )
    action_deadline: float = setting(
        60.0,
        env="CONSOLE_ACTION_DEADLINE",
        flag="action_deadline",
        help="seconds for an action (resolve, approve or reject): a refund voids and refunds with retries",
    )
    reconcile_deadline: float = setting(
        300.0,
        env="CONSOLE_RECONCILE_DEADLINE",
        flag="reconcile_deadline",
        help="seconds for running a day's reconciliation",
    )
    token_ttl: float = setting(
        120.0,
        env="CONSOLE_TOKEN_TTL",
        flag="token_ttl",
        help="seconds the operator token minted for each request is valid (it names the logged-in "
        "operator; it must outlive the longest deadline above only when a call runs that long)",
    )
    hold_cache: float = setting(
        60.0,
        env="CONSOLE_HOLD_CACHE",
        flag="hold_cache",
        help="seconds the recharge center's hold window (GetOpsHealth) is reused for highlighting ages",
    )
    hold_fallback: float = setting(
        3600.0,
        env="CONSOLE_HOLD_FALLBACK",
        flag="hold_fallback",
        help="seconds taken as the hold window when the recharge center does not tell it",
    )

    def validate(self) -> None:
        require_positive(self, "deadline", "action_deadline", "reconcile_deadline", "token_ttl")
        for name in ("hold_cache", "hold_fallback"):
            if getattr(self, name) < 0:
                raise InvalidSetting(name, "must not be negative")


@dataclass(frozen=True)
class ConsoleSettings:
    listen: str = setting("127.0.0.1:8080", env="CONSOLE_LISTEN", help="host:port to serve the console on")
    target: str = setting(
        "127.0.0.1:50051", env="CONSOLE_TARGET", help="the recharge center's gRPC host:port (RechargeOps)"
    )
    tls_dir: str = setting(
        "",
        env="CONSOLE_TLS_DIR",
        help="directory with ca.crt, tls.crt, tls.key (python -m scripts.certs: its ops/ directory): "
        "serve HTTPS with tls.crt and call the recharge center with mutual TLS; empty = plain HTTP "
        "and plaintext gRPC, loopback addresses only",
    )
    auth_key_file: str = setting(
        "",
        env="CONSOLE_AUTH_KEY_FILE",
        help="file with the key operator tokens are signed with (the recharge center's "
        "--auth-key-file): the console mints a short-lived token for the logged-in operator on "
        "every request; required",
    )
    accounts_file: str = setting(
        DEFAULT_ACCOUNTS_FILE,
        env="CONSOLE_ACCOUNTS_FILE",
        help="the operators' accounts (add-operator writes it); re-read when it changes, so a "
        "removed operator's sessions end at their next request",
    )
    origin: str = setting(
        "",
        env="CONSOLE_ORIGIN",
        help="the console's address as browsers see it (https://ops.example:8443) when a proxy "
        "stands in between; POSTs whose Origin or Referer names another are refused; empty = "
        "this request's own scheme and Host",
    )
    page_size: int = setting(50, env="CONSOLE_PAGE_SIZE", help="rows per page of every list")
    list_limit: int = setting(
        2000,
        env="CONSOLE_LIST_LIMIT",
        help="anomalies read at most for one listing (sorted and paged here; past it the page says so)",
    )
    grace: float = setting(5.0, env="CONSOLE_GRACE", help="seconds to finish in-flight requests on shutdown")
    log_level: str = setting("info", env="CONSOLE_LOG_LEVEL", help="debug, info, warning, error")
    log_format: str = setting("console", env="CONSOLE_LOG_FORMAT", help="console or json")
    session: SessionSettings = group(SessionSettings, prefix="session", title="sessions")
    login: LoginSettings = group(LoginSettings, prefix="login", title="login throttling")
    calls: CallSettings = group(CallSettings, prefix="call", title="calls to the recharge center")

    def validate(self) -> None:
        parse_listen(self.listen)
        parse_listen(self.target)
        check_listen_setting(self.listen, self.tls_dir)
        if not self.auth_key_file:
            raise InvalidSetting("auth_key_file", "required: the console signs each operator's token with it")
        if not self.accounts_file:
            raise InvalidSetting("accounts_file", "required")
        if self.origin and not self.origin.startswith(("http://", "https://")):
            raise InvalidSetting("origin", "must start with http:// or https://")
        require_at_least_one(self, "page_size", "list_limit")
        require_positive(self, "grace")
