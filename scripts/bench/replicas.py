"""The services of one bench run: card system, WeChat simulator and N recharge-center replicas.

One replica: scripts/stack.py's stack as it is (process ``recharge``). Several (``--replicas N``,
PostgreSQL only — SQLite is one process's file): scripts/stack.py's replicas
(``build_stack(node_ids=...)``), here processes ``recharge-1`` … ``recharge-N``, each with its own
``--node-id`` (its name) and port, all on the recharge center's one database. ``start_stack`` runs
every replica's migrate step (``python -m recharge_service migrate``) at the same moment, before
any service starts — one migrates, the others find the schema current — then starts the replicas
side by side (a replica refuses a schema that is behind).

The WeChat simulator notifies every replica (``--notify-target A,B,…``: each attempt at the next in
turn, the following ones while one gives no answer); the load reaches them through one channel with
client-side ``round_robin`` (:attr:`BenchServices.recharge_target`). Each process writes its own
database counters (RC_DB_STATS_FILE); :attr:`BenchServices.groups` names the replicas, whose
counters and CPU the bench sums as the recharge center's, keeping each one's beside the sum.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rc_common.channels import ClientAuth
from scripts.bench.db import Databases, stats_env
from scripts.bench.load import replicas_target
from scripts.chaos.services import flag_args
from scripts.merchants import BENCH_MERCHANTS, direct_merchants_flag
from scripts.stack import ServiceProcess, Stack, build_stack, start_stack

#: Log levels that count as a problem seen in a run.
PROBLEM_LEVELS = frozenset({"warning", "error", "critical"})


def replica_names(replicas: int) -> list[str]:
    """The recharge center's process names: ``recharge`` alone, else ``recharge-1`` … ``recharge-N``."""
    return ["recharge"] if replicas == 1 else [f"recharge-{i}" for i in range(1, replicas + 1)]


#: The bench's customers are one payer (``load.OPENID``) in a closed loop of up to 128: no caps on
#: unpaid orders, and a call waits for an admission slot as long as its own deadline allows.
BENCH_RECHARGE_FLAGS = {
    "max-open-orders-per-card": "0",
    "max-open-orders-per-payer": "0",
    "max-queued-calls": "1024",
    "max-queue-wait": "30",
}


@dataclass
class BenchServices:
    stack: Stack
    #: Flags a service's ``--help`` does not list (not passed; reported).
    missing_flags: list[str] = field(default_factory=list)

    @property
    def replicas(self) -> tuple[ServiceProcess, ...]:
        """The recharge center's processes, the first (``stack.recharge``) first."""
        return self.stack.recharges

    @property
    def recharge(self) -> str:
        """The first replica: operator calls and probes (every replica serves the same database)."""
        return self.replicas[0].address

    @property
    def recharge_target(self) -> str:
        """Every replica as one target, for a ``round_robin`` channel (the load)."""
        return replicas_target([r.address for r in self.replicas])

    @property
    def auth(self) -> ClientAuth:
        """The stack's operator token (RechargeOps, CardAdmin, FaultControl)."""
        return self.stack.client_auth()

    @property
    def card(self) -> str:
        return self.stack.card.address

    @property
    def wechat(self) -> str:
        return self.stack.wechat.address

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """``{"recharge": (replica names)}`` with several replicas, else nothing to sum."""
        if len(self.replicas) == 1:
            return {}
        return {"recharge": tuple(r.name for r in self.replicas)}

    def processes(self) -> tuple[ServiceProcess, ...]:
        return self.stack.services

    def pids(self) -> dict[str, int]:
        return {p.name: p.process.pid for p in self.processes() if p.process is not None}

    def log_problems(self) -> dict[str, dict[str, int]]:
        """Per process: the events its JSON log has at level warning or above, counted by
        ``level:event`` (a service problem the figures alone would hide)."""
        found: dict[str, dict[str, int]] = {}
        for process in self.processes():
            counts: Counter[str] = Counter()
            try:
                lines = process.log_path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    counts["non-JSON line"] += 1
                    continue
                if isinstance(event, dict) and event.get("level") in PROBLEM_LEVELS:
                    counts[f"{event['level']}:{event.get('event')}"] += 1
            if counts:
                found[process.name] = dict(counts.most_common())
        return found

    def stop(self) -> None:
        """WeChat first (no notification to a stopped replica), then the replicas, then card."""
        self.stack.stop()


def start_services(
    args: argparse.Namespace, workdir: Path, databases: Databases, replicas: int, stats_file: Path
) -> BenchServices:
    """The three services with their default settings (plus --log-level), the recharge center as
    ``replicas`` processes, each process writing its database counters to its own file in
    ``workdir``; with --profile, that service (the first replica) under cProfile."""
    missing: list[str] = []
    flags = {"log-level": args.log_level}
    names = replica_names(replicas)
    built = build_stack(
        workdir,
        card_args=flag_args("card_service", flags, missing),
        recharge_args=flag_args("recharge_service", {**flags, **BENCH_RECHARGE_FLAGS}, missing),
        wechat_args=flag_args("wechat_mock", flags, missing) + direct_merchants_flag(BENCH_MERCHANTS),
        db_url_for=databases.urls,
        node_ids=names if replicas > 1 else (),
    )
    for process, name in zip(built.recharges, names, strict=True):
        process.name = name  # the bench's name for it: its counters file, CPU and RSS figures
    env = stats_env(workdir, [service.name for service in built.services])
    metrics = {"RC_METRICS": "off"} if getattr(args, "metrics", "on") == "off" else {}
    for service in built.services:
        service.env = {**service.env, **env[service.name], **metrics}
    if args.profile:
        service = getattr(built, args.profile)
        service.env = {**service.env, "PROFILE_MODULE": service.module, "PROFILE_OUT": str(stats_file)}
        service.module = "scripts.bench.profiled"
    return BenchServices(start_stack(built), missing)
