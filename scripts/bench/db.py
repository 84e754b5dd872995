"""The database side of the bench: each service's write-path counters, and the databases themselves.

Counters: ``rc_common/db.py`` counts per process ``units`` (write transactions), ``commits``
(physical COMMITs; group commit makes these fewer than units), ``statements`` (SQL sent, transaction
control excluded), ``failed_units`` and ``reads``, and with ``RC_DB_STATS_FILE`` set writes them as
JSON to that file every 0.5 s. The bench gives each service its own file (:func:`stats_env`) and
reads them before and after each level, once the servers went idle (:meth:`DbCounters.read` waits
until every file was rewritten after the call, so a reading is never older than the idle point).

Per top-up figures divide the counters' growth by the top-ups completed in the level; work the
level left behind (outbox deliveries, notifications) is done by the "after" reading, so it counts.
Units per call divide by the calls a top-up makes into that service:

- card: PreRecharge + ConfirmRecharge = 2 (by the flow; the bench cannot count them),
- wechat: CreatePrepay + Pay = 2, plus SendTemplateMessage (the customer notice) as counted by
  ``MessageSimulator.ListSentMessages`` (``send_count`` summed over the bench's openid).

Replicas: with several recharge-center processes on one database (``--replicas N``) each writes
its own file (``recharge-1`` …); :class:`DbCounters` sums them as ``recharge`` and
:func:`per_topup` keeps each replica's figures beside the sum (``row["replicas"]``).

Databases: SQLite files in the bench's workdir (the default), or one throwaway PostgreSQL server
(``tests/postgres.py``, as the suite starts it) with a database per service (``--db postgresql``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc

STATS_ENV = "RC_DB_STATS_FILE"  # the name rc_common/db.py reads
SERVICES = ("card", "recharge", "wechat")
COUNTERS = ("units", "commits", "statements", "failed_units", "reads", "outbox_units")
#: Calls a top-up makes into each simulator that the bench cannot count itself.
FIXED_CALLS = {"card": 2.0, "wechat": 2.0}
CALLS_DIVIDED_BY = {
    "card": "PreRecharge + ConfirmRecharge (2 per top-up, by the flow)",
    "wechat": "CreatePrepay + Pay (2 per top-up) + SendTemplateMessage (counted via ListSentMessages)",
}


def stats_env(workdir: Path, processes: Iterable[str] = SERVICES) -> dict[str, dict[str, str]]:
    """The environment that makes each process write its counters to its own file in ``workdir``."""
    return {name: {STATS_ENV: str(workdir / f"db-stats-{name}.json")} for name in processes}


@dataclass
class DbCounters:
    """Reads the processes' counter files; ``groups``: a service run as several processes
    (``{"recharge": ("recharge-1", "recharge-2")}``), read as the sum of its processes too."""

    paths: dict[str, Path]
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @classmethod
    def from_env(
        cls, env: dict[str, dict[str, str]], groups: Mapping[str, Sequence[str]] | None = None
    ) -> DbCounters:
        return cls({name: Path(values[STATS_ENV]) for name, values in env.items()}, dict(groups or {}))

    async def read(self, fresh_within_s: float = 1.6) -> dict[str, dict[str, int]]:
        """Each process's counters, from a file written after this call (waits up to
        ``fresh_within_s``; the files are rewritten every 0.5 s), and each group's sum. A process
        whose file is missing (its database layer does not write one) is left out."""
        mark = time.time_ns()
        deadline = time.monotonic() + fresh_within_s
        while time.monotonic() < deadline:
            if all(_mtime_ns(p) > mark for p in self.paths.values()):
                break
            await asyncio.sleep(0.05)
        counters = {}
        for name, path in self.paths.items():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            data["outbox_units"] = dict(data.get("labelled") or {}).get("outbox", 0)
            counters[name] = {key: int(data.get(key, 0)) for key in COUNTERS}
        for group, members in self.groups.items():
            read = [counters[m] for m in members if m in counters]
            if read:
                counters[group] = {key: sum(c[key] for c in read) for key in COUNTERS}
        return counters

    async def idle_rates(self, span_s: float) -> dict[str, dict[str, float]]:
        """Counter growth per second with no load (periodic work: outbox polls, sentinel)."""
        first, t0 = await self.read(), time.monotonic()
        await asyncio.sleep(span_s)
        last, t1 = await self.read(), time.monotonic()
        return {
            name: {k: round((last[name][k] - first[name][k]) / (t1 - t0), 2) for k in COUNTERS}
            for name in last
            if name in first
        }

    async def settle(self, idle: dict[str, dict[str, float]], window_s: float, timeout_s: float) -> float:
        """Seconds until no service's write units grow faster than at idle (x1.25, +1) over
        ``window_s``: deferred work that costs little CPU per second (an outbox polled every
        0.5 s, a notification retried later) is finished by then. Returns at ``timeout_s``
        at the latest."""
        started = time.monotonic()
        last, last_at = await self.read(), time.monotonic()
        busy_seen = False
        while time.monotonic() - started < timeout_s:
            await asyncio.sleep(window_s)
            now, now_at = await self.read(), time.monotonic()
            span = now_at - last_at
            busy = [
                name
                for name in now
                if name in last
                and now[name]["units"] - last[name]["units"]
                > idle.get(name, {}).get("units", 0.0) * span * 1.25 + 1
            ]
            if not busy:  # quiet since the previous reading (or since the start)
                return max(0.0, last_at - started) if busy_seen else 0.0
            busy_seen = True
            last, last_at = now, now_at
        return time.monotonic() - started


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


async def template_messages(channel: grpc.aio.Channel, openid: str) -> int | None:
    """SendTemplateMessage calls the WeChat simulator took for ``openid`` (duplicates included);
    None when it cannot tell (the RPC is missing or fails)."""
    stub = wechatpay_pb2_grpc.MessageSimulatorStub(channel)
    total, token = 0, ""
    while True:  # every page (the list is paged, at most 500 a page)
        request = wechatpay_pb2.ListSentMessagesRequest(openid=openid, page_size=500, page_token=token)
        try:
            listed = await stub.ListSentMessages(request, timeout=60)
        except grpc.aio.AioRpcError:
            return None
        total += int(sum(max(1, m.send_count) for m in listed.messages))
        token = listed.next_page_token
        if not token:
            return total


@dataclass
class Snapshot:
    """Everything read before or after a level."""

    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    messages: int | None = None


def per_topup(
    before: Snapshot,
    after: Snapshot,
    completed: int,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per service: the counters' growth and the per-top-up (and per-call) figures; a service in
    ``groups`` (several replicas) is their sum, each replica's own figures in ``row["replicas"]``
    (per top-up of the whole load, so they add up to the sum)."""
    topups = max(1, completed)
    messages = None
    if before.messages is not None and after.messages is not None:
        messages = (after.messages - before.messages) / topups
    out: dict[str, dict[str, Any]] = {}
    for name in SERVICES:
        row = _grown(before, after, name, topups)
        if row is None:
            continue
        if name in FIXED_CALLS:
            calls = FIXED_CALLS[name] + ((messages or 0.0) if name == "wechat" else 0.0)
            row["calls_per_topup"] = round(calls, 2)
            row["units_per_call"] = round(row["units"] / topups / calls, 2)
            if name == "wechat":
                row["template_messages_per_topup"] = round(messages, 2) if messages is not None else None
        members = (groups or {}).get(name, ())
        if members:
            row["replicas"] = {
                member: grown
                for member in members
                if (grown := _grown(before, after, member, topups)) is not None
            }
        out[name] = row
    return out


def _grown(before: Snapshot, after: Snapshot, name: str, topups: int) -> dict[str, Any] | None:
    """One process's (or group's) counters' growth and the per-top-up figures; None unread."""
    if name not in before.counters or name not in after.counters:
        return None
    delta = {k: after.counters[name][k] - before.counters[name][k] for k in COUNTERS}
    row: dict[str, Any] = dict(delta)
    # Every top-up writes in every service: no unit at all means its writes bypass
    # Database.write (not counted), not that they are free.
    row["counted"] = delta["units"] + delta["failed_units"] > 0
    # The outbox's deliveries (batched across orders) are counted apart: issue 10's bound on
    # write transactions per top-up excludes them.
    row["outbox_units_per_topup"] = round(delta["outbox_units"] / topups, 2)
    row["units_per_topup"] = round((delta["units"] - delta["outbox_units"]) / topups, 2)
    row["commits_per_topup"] = round(delta["commits"] / topups, 2)
    row["statements_per_topup"] = round(delta["statements"] / topups, 2)
    row["reads_per_topup"] = round(delta["reads"] / topups, 2)
    row["units_per_commit"] = round(delta["units"] / delta["commits"], 2) if delta["commits"] else None
    return row


@dataclass
class Databases:
    """Where the services keep their data for one bench run."""

    kind: str
    urls: dict[str, str] | None = None  # None: scripts/stack.py's SQLite files in the workdir
    server: Any = None
    version: str = ""

    @classmethod
    def start(cls, kind: str) -> Databases:
        if kind == "sqlite":
            import sqlite3

            return cls("sqlite", version=f"SQLite {sqlite3.sqlite_version}")
        from tests.postgres import start_postgres

        server = start_postgres()
        try:
            urls = {name: server.createdb(f"bench_{name}") for name in SERVICES}
        except BaseException:
            server.stop()
            raise
        return cls("postgresql", urls, server, f"PostgreSQL ({server.bindir})")

    def server_pid(self) -> int | None:
        """The PostgreSQL postmaster's pid (its backends are its children); None for SQLite."""
        if self.server is None:
            return None
        try:
            return int((Path(self.server.datadir) / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def note(self) -> str:
        if self.kind == "postgresql":
            return (
                "PostgreSQL as tests/postgres.py starts it: fsync=off, synchronous_commit=off, so its "
                "commits are not durable and write latencies are optimistic next to SQLite's "
                "synchronous=FULL"
            )
        return ""
