"""Start the three services as child processes (used by `make run`, the tests, chaos and bench).

Each service is started with ``--listen HOST:PORT`` (port 0 picks a free one) and JSON logs to a
file; the chosen port is read from its ``server_started`` log event. First the migrate step of the
three (``python -m <service> migrate``, side by side; a service refuses a schema that is behind),
then card system, recharge center, then the WeChat simulator (which needs the recharge center's
address for notifications). The WeChat keys are created first, so the recharge center can load them
at start.

Replicas: ``build_stack(..., node_ids=("r1", "r2"))`` gives one recharge-center process per node id
(``--node-id``, its own port, the same database); their migrate steps start at the same moment (the
migrations serialize themselves), the replicas start side by side, and the WeChat simulator
notifies all of them (``--notify-target``, failing over). ``Stack.recharge`` is the first replica.

Credentials: every stack has a token key (``auth.key``, ``--auth-key-file`` of all three) and an
operator token (``ops.token``: roles viewer, operator, approver, test) in its workdir, so scripts
and fixtures call RechargeOps, CardAdmin and FaultControl with ``stack.client_auth()``. With
``build_stack(..., tls=True)`` a development CA and one certificate per service are made under
``tls/`` (``scripts.certs``) and every service serves and calls with mutual TLS;
``stack.client_auth("pos")`` presents the POS certificate, ``"ops"`` (the default) the ops one.

The payment wire: ``build_stack(..., wire="http")`` runs the recharge center against WeChat Pay
APIv3 over HTTPS instead of the simulator's gRPC contract: the simulator also serves its APIv3
facade (``--http-listen``, with a self-signed certificate the stack makes under
``<keys>/http-tls/`` and every replica trusts by ``--wechatpay-ca-file``), and every replica
runs ``--payment-backend wechatpay-v3`` with an HTTPS notification endpoint
(``--notify-http-listen``, a second self-signed certificate under ``notify-tls/http-tls/`` that
the simulator trusts by ``--notify-ca-file``). WeChat posts to the ONE ``notify_url`` of a prepay:
the stack gives every replica the first replica's URL (a notification sent while that replica is
down is retried on the simulator's schedule; the sentinel's query recovers the rest). The gRPC
wire (``"grpc"``) stays the default.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rc_common.auth import APPROVER, OPERATOR, TEST, VIEWER, issue_token, load_key, write_key
from rc_common.channels import TOKEN_FILE, ClientAuth
from rc_common.tls import TlsFiles

ROOT = Path(__file__).resolve().parent.parent
#: Under a stack's workdir: the simulator's WeChat keys; the recharge center reads only the
#: merchant bundle the simulator writes in it (``<keys>/merchant``, never its ``platform/``).
KEYS_DIR = "wechat-keys"
#: Under a stack's workdir: the token key of its services, and the certificates (tls=True).
AUTH_KEY = "auth.key"
TLS_DIR = "tls"
#: The subject and roles of the operator token a stack writes (``ops.token``).
STACK_OPERATOR = "stack-operator"
STACK_ROLES = (VIEWER, OPERATOR, APPROVER, TEST)
#: Seconds the stack's token stays valid.
TOKEN_TTL = 30 * 24 * 3600.0
#: Under a stack's workdir: the one key every process (every replica) MACs its page tokens with.
PAGE_TOKEN_KEY = "page-token.key"
#: The payment wires between the recharge center and WeChat Pay (``build_stack(wire=...)``).
WIRES = ("grpc", "http")
#: Under a stack's workdir (wire "http"): where the notification endpoint's certificate is made
#: (``<NOTIFY_TLS>/http-tls/tls.crt`` and ``tls.key``).
NOTIFY_TLS = "notify-tls"
#: The path of the recharge center's notification endpoint (its ``--notify-http-path`` default).
NOTIFY_PATH = "/wechatpay/notify"
#: Seconds the stack waits for the simulator's APIv3 facade to accept connections after start.
HTTP_READY_TIMEOUT = 30.0


@dataclass
class ServiceProcess:
    name: str
    module: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    host: str = "127.0.0.1"
    #: Its ``--metrics-listen`` port (loopback, free at start); 0 before the start.
    metrics_port: int = 0
    #: Whether it serves metrics (the three services do; the operators' console does not).
    metrics: bool = True

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, listen: str, timeout: float = 30.0) -> None:
        self.host = listen.rpartition(":")[0]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        self.metrics_port = _free_port("127.0.0.1") if self.metrics else 0
        metrics = ["--metrics-listen", f"127.0.0.1:{self.metrics_port}"] if self.metrics else []
        argv = [sys.executable, "-m", self.module, "--listen", listen, "--log-format", "json", *metrics]
        self.process = subprocess.Popen(
            [*argv, *self.args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        self.port = self._wait_for_port(offset, timeout)

    @property
    def migrate_log_path(self) -> Path:
        """Where the migrate step logs (next to the service's log: ``card-migrate.log``)."""
        return self.log_path.with_name(f"{self.log_path.stem}-migrate{self.log_path.suffix}")

    def begin_migrate(self) -> subprocess.Popen[bytes]:
        """Start ``python -m <module> migrate`` on this service's database (its ``--db`` argument,
        else its environment's), the output appended to ``migrate_log_path``; ``migrate`` waits."""
        self.migrate_log_path.parent.mkdir(parents=True, exist_ok=True)
        db = self.args[self.args.index("--db") : self.args.index("--db") + 2] if "--db" in self.args else []
        with self.migrate_log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", self.module, "migrate", *db, "--log-format", "json"],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, PYTHONUNBUFFERED="1", **self.env),
            )

    def migrate(self, timeout: float = 120.0) -> None:
        """The migrate step of this service alone (see ``migrate``)."""
        migrate([self], timeout)

    def _wait_for_port(self, offset: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}:\n{self.tail()}")
            with self.log_path.open("rb") as handle:
                handle.seek(offset)
                for line in handle:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if event.get("event") == "server_started":
                        return int(event["port"])
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not start within {timeout}s; see {self.log_path}")

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """kill -9: no graceful shutdown (crash tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def migrate(services: Sequence[ServiceProcess], timeout: float = 120.0) -> None:
    """Run the migrate step of each service, side by side; raises naming those that failed."""
    running = [(service, service.begin_migrate()) for service in services]
    failed: list[str] = []
    for service, process in running:
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        if code != 0:
            log = service.migrate_log_path
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-5:])
            failed.append(f"{service.name} (exit {code}; see {log}):\n{tail}")
    if failed:
        raise RuntimeError("migrate failed for " + "\n".join(failed))


@dataclass
class Stack:
    """The three services, configured for one directory of state."""

    workdir: Path
    card: ServiceProcess
    #: The recharge center (its first replica when there are several).
    recharge: ServiceProcess
    wechat: ServiceProcess
    #: The recharge center's other replicas, on the same database (``build_stack(node_ids=...)``).
    replicas: list[ServiceProcess] = field(default_factory=list)
    #: Mutual TLS between every service (``build_stack(tls=True)``).
    tls: bool = False
    #: The payment wire: "grpc" (the simulator's gRPC contract) or "http" (WeChat Pay APIv3).
    wire: str = "grpc"
    #: Wire "http", once started: the simulator's APIv3 base URL and the notify URL of every
    #: prepay and refund (the first replica's endpoint).
    wechatpay_base_url: str = ""
    notify_url: str = ""

    @property
    def recharges(self) -> tuple[ServiceProcess, ...]:
        """Every replica of the recharge center, the first one first."""
        return (self.recharge, *self.replicas)

    @property
    def services(self) -> tuple[ServiceProcess, ...]:
        return (self.card, *self.recharges, self.wechat)

    @property
    def keys_dir(self) -> Path:
        """The simulator's WeChat keys (``--keys-dir``): its private ``platform/`` side and the
        merchant bundles, the provider's in ``merchant/``, each direct merchant's below it."""
        return self.workdir / KEYS_DIR

    @property
    def merchant_keys_dir(self) -> Path:
        """The provider's merchant bundle: the recharge center's ``--wechat-keys-dir``."""
        from wechat_mock.adapters.keys import merchant_bundle_dir

        return merchant_bundle_dir(self.keys_dir)

    @property
    def token_path(self) -> Path:
        """The operator token the stack's services accept (all roles; ``start_stack`` writes it)."""
        return self.workdir / TOKEN_FILE

    @property
    def auth_key_path(self) -> Path:
        return self.workdir / AUTH_KEY

    def token_for(self, subject: str, roles: Sequence[str] = STACK_ROLES, ttl: float = TOKEN_TTL) -> str:
        """A token the stack's services accept, for ``subject`` with ``roles`` (an operator)."""
        return issue_token(load_key(self.auth_key_path), subject, roles, ttl)

    def tls_dir(self, identity: str) -> Path:
        """The TLS directory of ``identity`` (recharge, card, wechat, ops, pos) when ``tls``."""
        return self.workdir / TLS_DIR / identity

    def client_auth(self, identity: str = "ops", *, token: bool = True) -> ClientAuth:
        """What a client of this stack presents: the stack's operator token (unless ``token`` is
        False) and, with TLS, the certificate of ``identity``."""
        tls = TlsFiles.load(self.tls_dir(identity)) if self.tls else None
        return ClientAuth.from_dir(self.workdir, tls=tls) if token else ClientAuth(tls)

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()


def build_stack(
    workdir: Path,
    *,
    card_args: Sequence[str] = (),
    recharge_args: Sequence[str] = (),
    wechat_args: Sequence[str] = (),
    db_url_for: dict[str, str] | None = None,
    node_ids: Sequence[str] = (),
    tls: bool = False,
    wire: str = "grpc",
) -> Stack:
    """``node_ids``: one recharge-center replica per name (``--node-id``), all on its database;
    none (the default): one recharge center that names itself. ``tls``: mutual TLS everywhere.
    ``wire``: "grpc" (default) or "http" (WeChat Pay APIv3 over HTTPS; see the module's doc)."""
    from wechat_mock.adapters.keys import merchant_bundle_dir

    if wire not in WIRES:
        raise ValueError(f"wire must be one of {WIRES}, not {wire!r}")

    workdir.mkdir(parents=True, exist_ok=True)

    def secured(name: str) -> list[str]:
        flags = ["--auth-key-file", str(workdir / AUTH_KEY)]
        return [*flags, "--tls-dir", str(workdir / TLS_DIR / name)] if tls else flags

    keys_dir = workdir / KEYS_DIR
    bundle = merchant_bundle_dir(keys_dir)  # never keys_dir itself: it holds WeChat's private key
    dbs = db_url_for or {
        name: f"sqlite+aiosqlite:///{workdir / (name + '.db')}" for name in ("card", "recharge", "wechat")
    }
    token_key = ["--page-token-key-file", str(page_token_key(workdir))]
    card = ServiceProcess(
        "card",
        "card_service",
        ["--db", dbs["card"], *token_key, *secured("card"), *card_args],
        workdir / "logs" / "card.log",
    )

    def replica(name: str, node_id: str | None) -> ServiceProcess:
        node = ["--node-id", node_id] if node_id else []
        return ServiceProcess(
            name,
            "recharge_service",
            [
                *("--db", dbs["recharge"], "--wechat-keys-dir", str(bundle)),
                *node,
                *token_key,
                *secured("recharge"),
                *recharge_args,
            ],
            workdir / "logs" / f"{name}.log",
        )

    nodes: list[str | None] = [*node_ids] or [None]
    # The first keeps the name "recharge" (its log: recharge.log); the others are named by node.
    recharges = [replica("recharge" if i == 0 else f"recharge-{node}", node) for i, node in enumerate(nodes)]
    wechat = ServiceProcess(
        "wechat",
        "wechat_mock",
        ["--db", dbs["wechat"], "--keys-dir", str(keys_dir), *token_key, *secured("wechat"), *wechat_args],
        workdir / "logs" / "wechat.log",
    )
    return Stack(workdir, card, recharges[0], wechat, recharges[1:], tls, wire)


def write_credentials(folder: Path, token_ttl: float = TOKEN_TTL) -> ClientAuth:
    """``folder/auth.key`` (made once, kept across restarts: pass it as ``--auth-key-file``) and a
    fresh operator token with every role in ``folder/ops.token``; returns that token to present."""
    key = write_key(folder / AUTH_KEY)
    token = issue_token(key, STACK_OPERATOR, STACK_ROLES, token_ttl)
    path = folder / TOKEN_FILE
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return ClientAuth(token=token)


def ensure_credentials(stack: Stack, token_ttl: float = TOKEN_TTL, hosts: Sequence[str] = ()) -> None:
    """The stack's token key and operator token (``write_credentials``), and with TLS the
    development CA and certificates (made once)."""
    write_credentials(stack.workdir, token_ttl)
    if stack.tls and not (stack.workdir / TLS_DIR / "ca.crt").exists():
        from scripts.certs import make_certs

        make_certs(stack.workdir / TLS_DIR, hosts=hosts)


def page_token_key(workdir: Path) -> Path:
    """The stack's page-token key file (made once, readable by its owner only): every replica
    gets the same one, so a token one replica made is good on any other."""
    path = workdir / PAGE_TOKEN_KEY
    if not path.exists():
        import secrets

        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path


def start_stack(
    stack: Stack,
    *,
    host: str = "127.0.0.1",
    ports: tuple[int, int, int] = (0, 0, 0),
    notify_targets: Sequence[str] = (),
) -> Stack:
    """Migrate the three databases, start card, recharge, wechat (in that order) and wire their
    addresses; WeChat notifies the recharge center and then ``notify_targets`` (other replicas'
    PaymentNotifications), in turn.

    With several replicas (``build_stack(node_ids=...)``) every replica runs its migrate step, all
    at the same moment on the one database (as replicas started together would), the replicas
    start side by side (the first on ``ports[1]``, the others on free ports), and WeChat notifies
    each of them in turn."""
    from wechat_mock.adapters.keys import ensure_keys

    ensure_keys(stack.keys_dir)
    ensure_credentials(stack, hosts=[host])
    migrate(stack.services)
    card_port, recharge_port, wechat_port = ports
    try:
        stack.card.start(f"{host}:{card_port}")
        # The WeChat simulator's port is only known after it starts; reserve it by starting the
        # recharge center with the simulator's address given at start when fixed, else late-bound.
        if wechat_port == 0:
            wechat_port = _free_port(host)
        for replica in stack.recharges:
            replica.args += ["--card-target", stack.card.address, "--payment-target", f"{host}:{wechat_port}"]
        http_port = _wire_http(stack, host) if stack.wire == "http" else 0
        listens = [f"{host}:{recharge_port}"] + [f"{host}:0"] * len(stack.replicas)
        start_side_by_side(stack.recharges, listens)
        targets = [r.address for r in stack.recharges]
        stack.wechat.args += ["--notify-target", ",".join([*targets, *notify_targets])]
        stack.wechat.start(f"{host}:{wechat_port}")
        if http_port:
            wait_listening(host, http_port, HTTP_READY_TIMEOUT, stack.wechat)
    except BaseException:
        stack.stop()
        raise
    return stack


def _wire_http(stack: Stack, host: str) -> int:
    """Configure ``stack`` for the HTTP wire (before anything starts): the simulator's APIv3
    facade on a free port with a certificate made now (so the replicas can trust it at start),
    each replica's HTTPS notification endpoint on a free port, all of them naming the first
    replica's as ``notify_url``. Returns the facade's port."""
    from scripts.merchants import PROVIDER_APPID
    from wechat_mock.adapters import http_tls

    facade = http_tls.throwaway(stack.keys_dir, host)
    notify_tls = http_tls.throwaway(stack.workdir / NOTIFY_TLS, host)
    http_port = _free_port(host)
    notify_ports = [_free_port(host) for _ in stack.recharges]
    url_host = f"[{host}]" if ":" in host else host
    stack.wechatpay_base_url = f"https://{url_host}:{http_port}"
    stack.notify_url = f"https://{url_host}:{notify_ports[0]}{NOTIFY_PATH}"
    for replica, notify_port in zip(stack.recharges, notify_ports, strict=True):
        replica.args += [
            *("--payment-backend", "wechatpay-v3", "--wechatpay-base-url", stack.wechatpay_base_url),
            *("--wechatpay-ca-file", str(facade.cert_file), "--wechatpay-sp-appid", PROVIDER_APPID),
            *("--notify-http-listen", f"{host}:{notify_port}"),
            *("--notify-http-tls-dir", str(notify_tls.cert_file.parent)),
            *("--wechatpay-notify-url", stack.notify_url),
        ]
    stack.wechat.args += [
        *("--http-listen", f"{host}:{http_port}", "--http-tls-dir", str(facade.cert_file.parent)),
        *("--notify-ca-file", str(notify_tls.cert_file)),
    ]
    return http_port


def wait_listening(host: str, port: int, timeout: float, service: ServiceProcess) -> None:
    """Wait until ``host:port`` accepts a TCP connection (a listener ``service`` starts after
    its ``server_started``); raises when the service exits or ``timeout`` passes."""
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if service.process is not None and service.process.poll() is not None:
                why = f"{service.name} exited; see {service.log_path}:\n{service.tail()}"
                raise RuntimeError(why) from None
            if time.monotonic() > deadline:
                why = f"{service.name} not listening on {host}:{port} within {timeout}s"
                raise TimeoutError(why) from None
            time.sleep(0.05)


def start_side_by_side(services: Sequence[ServiceProcess], listens: Sequence[str]) -> None:
    """Start ``services`` at the same moment (each on its ``listens``), waiting for all of them;
    raises the first failure once every start has ended."""
    if len(services) == 1:
        services[0].start(listens[0])
        return
    with ThreadPoolExecutor(max_workers=len(services)) as pool:
        started = [pool.submit(s.start, listen) for s, listen in zip(services, listens, strict=True)]
        errors = [e for e in (f.exception() for f in started) if e is not None]
    if errors:
        raise errors[0]


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
