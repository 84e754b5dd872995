"""Processes for the bench: the bare chain's three servers, CPU and peak-RSS sampling of any pids.

A service run as several processes (recharge-center replicas) is a *group*: its CPU is the sum of
its processes' (:func:`with_group_sums`), its peak RSS stays per process (each is its own heap).
:class:`CpuMeter` also charges a load with the CPU of what serves the services but is not one of
them: the database server's whole process tree (PostgreSQL; SQLite runs inside the services) and the
load generator (this process) — on a small machine they share the same cores.

Peak RSS is the kernel's high-water mark (``VmHWM`` in /proc/PID/status) when readable, else the
largest RSS psutil saw while sampling every 0.2 s.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs in the pinned dev deps

from scripts.stack import ROOT


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _start_bare(role: str, *args: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.bench.bare", "--role", role, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"bare {role} did not start: {line!r}")
    return process, int(line.split()[1])


@dataclass
class BareChain:
    processes: dict[str, subprocess.Popen[str]]
    recharge: str
    card: str
    wechat: str

    @classmethod
    def start(cls, host: str = "127.0.0.1") -> BareChain:
        card, card_port = _start_bare("card", "--listen", f"{host}:0")
        wechat_port = _free_port(host)
        recharge, recharge_port = _start_bare(
            "recharge",
            "--listen",
            f"{host}:0",
            "--card-target",
            f"{host}:{card_port}",
            "--payment-target",
            f"{host}:{wechat_port}",
        )
        wechat, _ = _start_bare(
            "wechat", "--listen", f"{host}:{wechat_port}", "--notify-target", f"{host}:{recharge_port}"
        )
        return cls(
            {"card": card, "recharge": recharge, "wechat": wechat},
            f"{host}:{recharge_port}",
            f"{host}:{card_port}",
            f"{host}:{wechat_port}",
        )

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items()}

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds used so far: ``name`` for the whole process and ``name:loop``
    for its main thread (where the asyncio event loop runs; the rest is gRPC's and aiosqlite's
    threads). A loop near one CPU-second per second is the ceiling of that service."""
    used = {}
    for name, pid in pids.items():
        try:
            process = psutil.Process(pid)
            times = process.cpu_times()
            threads = {t.id: t.user_time + t.system_time for t in process.threads()}
        except psutil.Error:
            continue
        used[name] = times.user + times.system
        if pid in threads:
            used[f"{name}:loop"] = threads[pid]
    return used


def with_group_sums(values: dict[str, float], groups: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """``values`` per process plus, for each group, the sum over its processes (those present)."""
    summed = dict(values)
    for group, members in groups.items():
        present = [values[m] for m in members if m in values]
        if present:
            summed[group] = sum(present)
    return summed


#: CpuMeter's name for this process, the load generator.
LOAD = "load"
#: CpuMeter's name for the whole machine (every CPU's busy time): what else ran shows beside ours.
MACHINE = "machine"
#: Cores other work on the machine kept busy while a load ran (:func:`other_work`).
OTHERS = "others"


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine so far, all CPUs (user, nice, system, interrupts; the
    guest times are inside user and nice already)."""
    times = psutil.cpu_times()
    busy = ("user", "nice", "system", "irq", "softirq")
    return float(sum(getattr(times, name, 0.0) for name in busy))


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid``, of its live descendants and of the children it reaped
    (a server's exited backends); None when ``pid`` is gone or unreadable."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        children = root.children(recursive=True)
    except psutil.Error:
        return None
    total = float(times.user + times.system + times.children_user + times.children_system)
    for child in children:
        try:
            child_times = child.cpu_times()
        except psutil.Error:  # exited since listed: its time reaches children_* once reaped
            continue
        total += child_times.user + child_times.system
    return total


@dataclass
class CpuMeter:
    """CPU seconds used so far, per name: each service process of ``pids`` (and its event-loop
    thread, ``name:loop``), each group's sum (``{"recharge": ("recharge-1", "recharge-2")}``), each
    process tree of ``trees`` as a whole (``{"postgres": postmaster pid}``), this process (the load
    generator, :data:`LOAD`), and the whole machine (:data:`MACHINE`; minus all the others, what other
    work competed for the cores). Only ``pids`` are waited on to be idle."""

    pids: dict[str, int]
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)
    trees: dict[str, int] = field(default_factory=dict)

    def read(self) -> dict[str, float]:
        used = with_group_sums(cpu_seconds(self.pids), self.groups)
        for name, pid in self.trees.items():
            seconds = tree_cpu_seconds(pid)
            if seconds is not None:
                used[name] = seconds
        times = psutil.Process().cpu_times()
        used[LOAD] = times.user + times.system
        used[MACHINE] = machine_cpu_seconds()
        return used


def _processes(values: Mapping[str, float], groups: Iterable[str]) -> list[str]:
    """The names of ``values`` that are one process or tree each: no ``name:loop`` thread, no
    group's sum, not the machine or the others."""
    skip = {*groups, MACHINE, OTHERS}
    return [k for k in values if ":" not in k and k not in skip]


def other_work(used: Mapping[str, float], groups: Iterable[str], window_s: float) -> float | None:
    """Cores busy with work not ours (not a service, the database server or the load generator)
    over ``window_s``, from the growth of a CpuMeter's reading over that window; None when the
    machine was not read."""
    if MACHINE not in used or window_s <= 0:
        return None
    ours = sum(used[k] for k in _processes(used, groups))
    return max(0.0, used[MACHINE] - ours) / window_s


def split_busy(
    busy: Mapping[str, float], groups: Iterable[str] = ()
) -> tuple[float, float, float | None]:
    """Cores busy by (the services and database server, the load generator, other work on the
    machine) from a load's ``cpu_busy`` (each process once: groups' sums and loop threads left out)."""
    ours = sum(busy[k] for k in _processes(busy, groups) if k != LOAD)
    return ours, busy.get(LOAD, 0.0), busy.get(OTHERS)


async def wait_idle(
    pids: dict[str, int], *, busy_below: float = 0.1, samples: int = 4, timeout_s: float = 180.0
) -> float:
    """Seconds until every process uses less than ``busy_below`` of a core for ``samples`` x 0.25 s.

    Work a level left behind (follow-up deliveries through the outbox, ...) is done by then, so
    the next level starts clean and the drain time can be charged to the level that caused it.
    """
    started = time.monotonic()
    quiet = 0
    last = cpu_seconds(pids)
    while time.monotonic() - started < timeout_s:
        await asyncio.sleep(0.25)
        now = cpu_seconds(pids)
        busiest = max((now[k] - last.get(k, now[k])) / 0.25 for k in now if ":" not in k) if now else 0.0
        last = now
        quiet = quiet + 1 if busiest < busy_below else 0
        if quiet >= samples:
            return max(0.0, time.monotonic() - started - samples * 0.25)
    return time.monotonic() - started


def vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class RssSampler:
    pids: dict[str, int]
    interval_s: float = 0.2
    peaks: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            try:
                rss = psutil.Process(pid).memory_info().rss / 2**20
            except psutil.Error:
                continue
            self.peaks[name] = max(self.peaks.get(name, 0.0), rss)
            hwm = vm_hwm_mb(pid)
            if hwm is not None:
                self.peaks[name] = max(self.peaks[name], hwm)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def peak_mb(self) -> dict[str, float]:
        self._sample()
        return {name: round(mb, 1) for name, mb in sorted(self.peaks.items())}

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
