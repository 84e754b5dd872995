"""The services a chaos or bench run talks to: started here (short settings) or given as targets.

:func:`start_fresh` starts the three services with :mod:`scripts.stack` in a directory, passing the
time-scale flags the run wants — but only those the service's ``--help`` lists; a missing flag is
reported (``Services.missing_flags``), never silently guessed — and the WeChat simulator's
``--direct-merchants`` for the run's direct-mode merchants (their keys are then created in the
stack's keys directory; the recharge center reads only their bundles, ``merchant/direct/<mchid>/``).
:func:`attach` wraps running ones; their simulator must list the run's direct merchants, and
``keys_dir`` must be its keys directory.
``restart_recharge`` is the crash profile's kill -9 and restart on the same port with the same DB.

Replicas (``start_fresh(..., replicas=N, db="postgresql")``): N recharge centers named ``r1..rN``
(``--node-id``) on one database — a PostgreSQL server started here (``tests/postgres.py``, the
suite's throwaway server) or given, with a database per service; or one SQLite file — their
migrate steps started at the same moment, WeChat notifying all of them. Callers reach them through
one client-side ``round_robin`` target (``Services.recharge``: ``ipv4:127.0.0.1:P1,127.0.0.1:P2``,
see :mod:`scripts.chaos.rpc`). Even one replica is named (``r1``), so its timeline rows keep their
node across restarts.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from rc_common.channels import ClientAuth
from scripts.merchants import CHAOS_MERCHANTS, PROVIDER_MCHID, DemoMerchant, direct_merchants_flag
from scripts.stack import ROOT, ServiceProcess, Stack, build_stack, start_stack

if TYPE_CHECKING:  # tests/postgres.py is imported only when a run asks for PostgreSQL
    from tests.postgres import PostgresServer

#: The databases a stack can run on (``--db``).
DATABASES = ("sqlite", "postgresql")

#: Time-scale settings for chaos: seconds, not the production hours. Keys are flags without "--".
CHAOS_RECHARGE_FLAGS: dict[str, str] = {
    "hold": "1",
    "sentinel-interval": "1",
    # (The payment window is each merchant's: scripts/merchants.py CHAOS_MERCHANTS, 8 s.)
    "remote-deadline": "1",
    "remote-backoff": "0.05",
    "remote-backoff-max": "0.5",
    "confirm-deadline": "0.6",
    "confirm-backoff": "0.05",
    "outbox-interval": "0.2",
    "outbox-backoff": "0.1",
    "outbox-backoff-max": "1",
    # Visits before MANUAL_REVIEW: ~a minute at a 1 s sentinel interval, longer than a run's
    # fault window, so only orders nobody can decide end there.
    "max-attempts": "60",
    # A killed process's claims expire after the lease: keep it above one order's worst-case work
    # (remote-deadline x attempts + backoff ~ 3.5 s) and far below the quiet timeout.
    "lease": "5",
    "outbox-lease": "5",
    # Chaos puts many unpaid orders of one payer on a few cards on purpose: no caps on them.
    "max-open-orders-per-card": "0",
    "max-open-orders-per-payer": "0",
}
CHAOS_WECHAT_FLAGS: dict[str, str] = {
    "notify-schedule": "0.3,0.5,1,1,2,2,3,3,5,5,8,8",
    "refund-delay": "0.3",
    "notify-timeout": "2",
}
CHAOS_CARD_FLAGS: dict[str, str] = {}


@cache
def supported_flags(module: str) -> frozenset[str]:
    """Flag names (without ``--``) that ``python -m module --help`` documents."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    return frozenset(re.findall(r"(?m)^\s+--([a-z0-9-]+)", done.stdout))


def flag_args(module: str, wanted: Mapping[str, str], missing: list[str]) -> list[str]:
    """``--flag value`` pairs for the flags ``module`` supports; the others go to ``missing``."""
    known = supported_flags(module)
    args: list[str] = []
    for name, value in wanted.items():
        if name in known:
            args += [f"--{name}", value]
        else:
            missing.append(f"{module} --{name}")
    return args


@dataclass
class Services:
    recharge: str
    card: str
    wechat: str
    stack: Stack | None = None
    missing_flags: list[str] = field(default_factory=list)
    settings: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The WeChat simulator's keys directory (a direct-mode merchant's keys are in ``direct/<mchid>/``).
    keys_dir: Path | None = None
    #: The provider's WeChat merchant id, named with each partner-mode merchant's sub_mchid.
    sp_mchid: str = PROVIDER_MCHID
    #: sqlite | postgresql (what the started services keep their data in).
    db: str = "sqlite"
    #: The PostgreSQL server this object started and stops with the services (None: not ours).
    postgres: PostgresServer | None = None
    #: Databases this object created on someone else's server, dropped when it stops.
    created_on: tuple[PostgresServer, list[str]] | None = None
    #: What the run's clients present: the started stack's operator token; attached: $RC_OPS_TOKEN.
    auth: ClientAuth = field(default_factory=ClientAuth)

    @property
    def owned(self) -> bool:
        """True when this run started the processes (so it may kill and restart them)."""
        return self.stack is not None

    @property
    def node_ids(self) -> list[str]:
        """The recharge-center replicas' ``--node-id`` (in order; empty when not started here)."""
        if self.stack is None:
            return []
        return [_node_id(r) for r in self.stack.recharges]

    @property
    def wire(self) -> str:
        """The payment wire of the started stack (``grpc`` or ``http``; attached: ``grpc``)."""
        return self.stack.wire if self.stack is not None else "grpc"

    @property
    def replicas(self) -> int:
        return len(self.stack.recharges) if self.stack is not None else 1

    def restart_recharge(self, pause_s: float = 0.0, replica: int = 0) -> float:
        """kill -9 the recharge center (replica number ``replica``, from 0), then start it again on
        the same port with the same DB (no migrate step: the schema is already there). Returns when
        the killed process was gone (``time.time()``)."""
        if self.stack is None:
            raise RuntimeError("cannot crash services this run did not start (--targets)")
        service = self.stack.recharges[replica]
        host, port = service.host, service.port
        service.kill()
        died_at = time.time()
        if pause_s:
            time.sleep(pause_s)
        for attempt in range(20):
            try:
                service.start(f"{host}:{port}")
                return died_at
            except RuntimeError:  # the port may still be held for a moment after the kill
                if attempt == 19:
                    raise
                time.sleep(0.25)
        return died_at

    def pids(self) -> dict[str, int]:
        if self.stack is None:
            return {}
        return {s.name: s.process.pid for s in self.stack.services if s.process is not None}

    def stop(self) -> None:
        try:
            if self.stack is not None:
                self.stack.stop()
        finally:
            if self.postgres is not None:
                self.postgres.stop()
                self.postgres = None
            elif self.created_on is not None:
                drop_databases(*self.created_on)
            self.created_on = None


def _node_id(service: ServiceProcess) -> str:
    args = service.args
    return args[args.index("--node-id") + 1] if "--node-id" in args else ""


def round_robin_target(addresses: Sequence[str]) -> str:
    """One gRPC target for several replicas: ``ipv4:A,B`` (a channel to it needs the option
    ``grpc.lb_policy_name=round_robin`` to spread its calls: :func:`scripts.chaos.rpc.open_channel`);
    a single address stays as it is."""
    if len(addresses) == 1:
        return addresses[0]
    return "ipv4:" + ",".join(addresses)


def create_databases(server: PostgresServer, prefix: str = "chaos") -> dict[str, str]:
    """A new database per service on ``server`` (unique names, so runs never share one)."""
    tag = uuid.uuid4().hex[:10]
    return {name: server.createdb(f"{prefix}_{name}_{tag}") for name in ("card", "recharge", "wechat")}


def _names(urls: Mapping[str, str]) -> list[str]:
    return [url.rsplit("/", 1)[-1] for url in urls.values()]


def drop_databases(server: PostgresServer, names: Sequence[str]) -> None:
    """Drop what :func:`create_databases` made, so a long session on one server does not fill the
    disk (a run's three databases hold tens of MB); best effort."""
    for name in names:
        try:
            # tests/postgres.py runs its binaries as the server's user (runuser when root).
            server._run("dropdb", "--if-exists", "-h", "127.0.0.1", "-p", str(server.port), "-U", server.user,
                        name)
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"could not drop database {name}: {exc}", file=sys.stderr)


def start_fresh(
    workdir: Path,
    *,
    recharge_flags: Mapping[str, str] = CHAOS_RECHARGE_FLAGS,
    wechat_flags: Mapping[str, str] = CHAOS_WECHAT_FLAGS,
    card_flags: Mapping[str, str] = CHAOS_CARD_FLAGS,
    extra: Mapping[str, Sequence[str]] | None = None,
    profile: tuple[str, Path] | None = None,
    merchants: Sequence[DemoMerchant] = CHAOS_MERCHANTS,
    replicas: int = 1,
    db: str = "sqlite",
    postgres: PostgresServer | None = None,
    wire: str = "grpc",
) -> Services:
    """``wire``: the payment wire of the stack (``"http"``: WeChat Pay APIv3 over HTTPS, see
    ``scripts.stack``; the simulator's faults apply there under the gRPC method names).
    ``profile=(name, stats_file)`` runs that service under cProfile (scripts/bench/profiled.py);
    the simulator serves ``merchants``' direct-mode ones (partner mode needs nothing).

    ``replicas``: recharge centers ``r1..rN`` on one database. ``db="postgresql"``: a database per
    service on ``postgres`` (the caller's server, left running) or on a server started here (and
    stopped by ``Services.stop``); ``"sqlite"``: files in ``workdir`` (the replicas share one)."""
    if replicas < 1:
        raise ValueError("replicas must be at least 1")
    if db not in DATABASES:
        raise ValueError(f"db must be one of {DATABASES}, not {db!r}")
    own_server: PostgresServer | None = None
    if db == "postgresql" and postgres is None:
        from tests.postgres import start_postgres

        postgres = own_server = start_postgres()
    urls: dict[str, str] | None = None
    try:
        urls = create_databases(postgres) if postgres is not None and db == "postgresql" else None
        services = _start(workdir, recharge_flags, wechat_flags, card_flags, extra, profile, merchants,
                          replicas, urls, wire)
    except BaseException:
        if own_server is not None:
            own_server.stop()
        elif postgres is not None and urls is not None:
            drop_databases(postgres, _names(urls))
        raise
    services.db, services.postgres = db, own_server
    if postgres is not None and own_server is None and urls is not None:
        services.created_on = (postgres, _names(urls))
    return services


def _start(
    workdir: Path,
    recharge_flags: Mapping[str, str],
    wechat_flags: Mapping[str, str],
    card_flags: Mapping[str, str],
    extra: Mapping[str, Sequence[str]] | None,
    profile: tuple[str, Path] | None,
    merchants: Sequence[DemoMerchant],
    replicas: int,
    urls: dict[str, str] | None,
    wire: str = "grpc",
) -> Services:
    missing: list[str] = []
    extra = extra or {}
    card_args = flag_args("card_service", card_flags, missing) + list(extra.get("card", ()))
    recharge_args = flag_args("recharge_service", recharge_flags, missing) + list(extra.get("recharge", ()))
    wechat_args = (
        flag_args("wechat_mock", wechat_flags, missing)
        + direct_merchants_flag(merchants)
        + list(extra.get("wechat", ()))
    )
    built = build_stack(
        workdir, card_args=card_args, recharge_args=recharge_args, wechat_args=wechat_args, db_url_for=urls,
        node_ids=[f"r{n}" for n in range(1, replicas + 1)], wire=wire,
    )
    if profile is not None:
        name, stats_file = profile
        service = getattr(built, name)
        service.env = {**service.env, "PROFILE_MODULE": service.module, "PROFILE_OUT": str(stats_file)}
        service.module = "scripts.bench.profiled"
    stack = start_stack(built)
    settings = {
        "card": {k: v for k, v in card_flags.items() if f"card_service --{k}" not in missing},
        "recharge": {k: v for k, v in recharge_flags.items() if f"recharge_service --{k}" not in missing},
        "wechat": {k: v for k, v in wechat_flags.items() if f"wechat_mock --{k}" not in missing},
    }
    return Services(
        round_robin_target([r.address for r in stack.recharges]), stack.card.address, stack.wechat.address,
        stack, missing, settings, keys_dir=stack.keys_dir, auth=stack.client_auth(),
    )


def attach(targets: str, keys_dir: Path | None = None, sp_mchid: str = PROVIDER_MCHID) -> Services:
    """``RECHARGE,CARD,WECHAT`` host:port triple of running services; ``keys_dir``: the simulator's
    keys directory, ``sp_mchid``: the provider's WeChat merchant id (both as the services know them)."""
    parts = [p.strip() for p in targets.split(",")]
    if len(parts) != 3 or not all(":" in p for p in parts):
        raise ValueError("--targets wants RECHARGE_HOST:PORT,CARD_HOST:PORT,WECHAT_HOST:PORT")
    auth = ClientAuth.from_options()  # the operator token in $RC_OPS_TOKEN (RechargeOps, FaultControl)
    return Services(parts[0], parts[1], parts[2], keys_dir=keys_dir, sp_mchid=sp_mchid, auth=auth)
