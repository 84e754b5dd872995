"""One chaos run: set the profile's faults, drive the top-ups, clear, wait until quiet, check.

``execute`` is what ``python -m scripts.chaos`` calls per (profile, seed) and what the test matrix
calls directly. Phases: prepare (open the run's merchants — each with its own bonus rule and WeChat
mode — and their cards) -> set faults with the seed -> drive (with the
crash monkey killing and restarting the recharge center — a seeded random one of its replicas —
if the profile says so) -> read fault
stats, clear faults -> wait until every order of the run is settled (terminal or MANUAL_REVIEW),
nudging the sentinel -> wait out late work (the longest injected delay) -> observe -> check.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc

from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from rc_common.business_day import business_date
from rc_common.clock import utc_now
from scripts.chaos.driver import Driver, OrderPlan, Progress, Shares, plan_orders, run_tag
from scripts.chaos.invariants import SETTLED, CheckResult, MerchantAccount, Observation, Violation, check
from scripts.chaos.observe import list_orders, observe, order_status
from scripts.chaos.profiles import FaultTally, Profile
from scripts.chaos.rpc import Stubs
from scripts.chaos.services import Services
from scripts.merchants import CHAOS_MERCHANTS, DemoMerchant, describe_rule, open_merchants
from scripts.reconcile import reconcile_day
from scripts.stack import ROOT

#: The WeChat simulator's keys of `make run`'s stack: a direct-mode merchant's bundle is named
#: from here when the services were given (--targets) without --keys-dir.
DEFAULT_KEYS_DIR = ROOT / "var" / "wechat-keys"


@dataclass(frozen=True)
class RunConfig:
    profile: Profile
    seed: int
    orders: int = 200
    concurrency: int = 16
    quiet_timeout_s: float = 120.0
    abandon_share: float = 0.05
    reject_share: float = 0.03
    spend_share: float = 0.5
    nonce: str = ""
    progress_every_s: float = 2.0
    quiet_output: bool = False
    #: The merchants the orders are spread over (at least one direct and one partner-mode).
    merchants: tuple[DemoMerchant, ...] = CHAOS_MERCHANTS

    @property
    def shares(self) -> Shares:
        return Shares(self.profile.doomed_share, self.abandon_share, self.reject_share, self.spend_share)

    @property
    def merchant_ids(self) -> list[str]:
        return [m.merchant_id for m in self.merchants]

    @property
    def accounts(self) -> list[MerchantAccount]:
        return [MerchantAccount(m.merchant_id, m.mode, m.mchid) for m in self.merchants]


@dataclass
class RunResult:
    config: RunConfig
    tag: str
    cards: list[str]
    plans: list[OrderPlan]
    progress: Progress
    tally: FaultTally
    observation: Observation
    result: CheckResult
    quiet: bool
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    accounts: list[MerchantAccount] = field(default_factory=list)
    #: Recharge-center replicas the run drove (one round_robin target), and their database.
    replicas: int = 1
    db: str = "sqlite"
    #: The payment wire: "grpc" or "http" (WeChat Pay APIv3 over HTTPS; scripts/stack.py).
    wire: str = "grpc"

    @property
    def end_states(self) -> dict[str, int]:
        return dict(Counter(o.status for o in self.observation.orders))

    def to_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "profile": c.profile.name,
            "seed": c.seed,
            "orders": c.orders,
            "concurrency": c.concurrency,
            "replicas": self.replicas,
            "db": self.db,
            "wire": self.wire,
            "kills_by_node": {node: len(times) for node, times in sorted(self.observation.kills.items())},
            "tag": self.tag,
            "merchants": [
                {"merchant_id": a.merchant_id, "mode": a.mode, "mchid": a.mchid} for a in self.accounts
            ],
            "quiet": self.quiet,
            "end_states": self.end_states,
            "faults_by_kind": self.tally.by_kind(),
            "faults": [
                {"service": s, "method": m, "kind": k, "count": n}
                for (s, m, k), n in sorted(self.tally.counts.items())
            ],
            "driver": {
                "created": self.progress.created,
                "rejected_at_create": self.progress.rejected,
                "create_unknown": self.progress.create_unknown,
                "paid": self.progress.paid,
                "pay_failed": self.progress.pay_failed,
                "frozen_cards": self.progress.frozen,
                "spends_done": self.progress.spends_done,
                "spends_refused": self.progress.spends_refused,
                "errors": self.progress.errors[:50],
            },
            "summary": self.result.summary,
            "violations_by_invariant": self.result.by_invariant(),
            "violations": [
                {"invariant": v.invariant, "subject": v.subject, "message": v.message}
                for v in self.result.violations
            ],
            "timings_s": {k: round(v, 2) for k, v in self.timings.items()},
            "timelines_of_violations": self.timelines_of_violations(),
            "notes": self.notes,
        }

    def timelines_of_violations(self, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
        """The timeline of each order named by a violation (the first ``limit``), for the report."""
        subjects = dict.fromkeys(v.subject for v in self.result.violations)
        return {
            no: [
                {"seq": e.seq, "at": round(e.at, 6), "node": e.node, "kind": e.kind, "method": e.method,
                 "outcome": e.outcome, "from": e.from_status, "to": e.to_status, "actor": e.actor,
                 "detail": e.detail, "error": e.error, "latency_ms": e.latency_ms}
                for e in sorted(self.observation.timelines[no], key=lambda e: e.seq)
            ]
            for no in list(subjects)[:limit]
            if no in self.observation.timelines
        }


class CrashMonkey:
    """kill -9 a recharge center when the driver has created the n-th order, and once while waiting.

    With several replicas each kill picks one at random (seeded); ``kill_log`` says which node was
    killed when (epoch seconds, the clock of the timeline's rows), for I7."""

    def __init__(self, services: Services, seed: int, kills: int, orders: int) -> None:
        rng = random.Random(seed * 7_919 + 17)
        during_drive = kills - 1 if kills > 1 else kills
        self._triggers = sorted(rng.sample(range(1, max(2, orders)), min(during_drive, max(1, orders - 1))))
        self._wait_kill = kills > 1
        self._wait_delay_s = rng.uniform(0.3, 1.5)
        self._pauses = [rng.uniform(0.0, 0.3) for _ in range(kills)]
        self._victims = [rng.randrange(services.replicas) for _ in range(kills)]
        self._nodes = services.node_ids
        self._services = services
        self._created = 0
        self._reached = asyncio.Event()
        self.kills = 0
        self.errors: list[str] = []
        self.kill_log: dict[str, list[float]] = {}

    async def _kill(self) -> None:
        pause = self._pauses[self.kills % len(self._pauses)]
        victim = self._victims[self.kills % len(self._victims)]
        node = self._nodes[victim] if victim < len(self._nodes) else f"replica-{victim + 1}"
        try:
            died_at = await asyncio.to_thread(self._services.restart_recharge, pause, victim)
            self.kills += 1
        except Exception as exc:  # recorded; the run goes on and the checker sees the damage
            died_at = time.time()  # (the kill comes before the restart that failed)
            self.errors.append(repr(exc))
        self.kill_log.setdefault(node, []).append(died_at)

    @property
    def by_node(self) -> dict[str, int]:
        return {node: len(times) for node, times in sorted(self.kill_log.items())}

    def notice(self, created: int) -> None:
        """The driver's count of answered creates; wakes the monkey at its next trigger."""
        self._created = created
        if self._triggers and created >= self._triggers[0]:
            self._reached.set()

    async def during_drive(self, done: asyncio.Event) -> None:
        while self._triggers:
            finished = asyncio.ensure_future(done.wait())
            reached = asyncio.ensure_future(self._reached.wait())
            await asyncio.wait({finished, reached}, return_when=asyncio.FIRST_COMPLETED)
            finished.cancel()
            reached.cancel()
            if not self._reached.is_set():
                return
            self._triggers.pop(0)
            self._reached.clear()
            self.notice(self._created)
            await self._kill()

    async def during_wait(self) -> None:
        if self._wait_kill:
            await asyncio.sleep(self._wait_delay_s)
            await self._kill()


def _say(config: RunConfig, text: str) -> None:
    if not config.quiet_output:
        print(f"[{config.profile.name} seed={config.seed}] {text}", file=sys.stderr, flush=True)


async def _set_faults(stubs: Stubs, profile: Profile, seed: int) -> None:
    for stub, rules in ((stubs.card_faults, profile.card), (stubs.wechat_faults, profile.wechat)):
        plan = faults_pb2.FaultPlan(seed=seed, rules=[r.to_proto() for r in rules])
        await stub.SetFaults(plan, timeout=10)


async def _collect_and_clear_faults(stubs: Stubs) -> FaultTally:
    """Counts first: ClearFaults resets them."""
    tally = FaultTally()
    for name, stub in (("card", stubs.card_faults), ("wechat", stubs.wechat_faults)):
        tally.add_stats(name, await stub.GetFaultStats(faults_pb2.GetFaultStatsRequest(), timeout=10))
        await stub.ClearFaults(faults_pb2.ClearFaultsRequest(), timeout=10)
    return tally


class SentinelNudger:
    """Calls RechargeOps.RunSentinel (honouring the hold) now and then; stops if UNIMPLEMENTED."""

    def __init__(self, stubs: Stubs) -> None:
        self._stubs = stubs
        self.available = True
        self.runs = 0
        self._last = 0.0

    async def maybe_run(self, every_s: float = 1.0) -> None:
        if not self.available or time.monotonic() - self._last < every_s:
            return
        self._last = time.monotonic()
        try:
            await self._stubs.ops.RunSentinel(recharge_pb2.RunSentinelRequest(ignore_hold=False), timeout=30)
            self.runs += 1
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                self.available = False


async def _wait_quiet(
    config: RunConfig, stubs: Stubs, cards: set[str], timeout_s: float, nudger: SentinelNudger
) -> bool:
    deadline = time.monotonic() + timeout_s
    last_print = 0.0
    while True:
        orders = await list_orders(stubs, config.merchant_ids, cards)
        open_orders = Counter(order_status(o.status) for o in orders if order_status(o.status) not in SETTLED)
        if not open_orders:
            return True
        if time.monotonic() - last_print >= config.progress_every_s:
            last_print = time.monotonic()
            _say(config, f"waiting for quiet: {sum(open_orders.values())} open {dict(open_orders)}")
        if time.monotonic() > deadline:
            return False
        await nudger.maybe_run()
        await asyncio.sleep(0.3)


async def _print_progress(config: RunConfig, driver: Driver, done: asyncio.Event) -> None:
    while not done.is_set():
        try:
            await asyncio.wait_for(done.wait(), config.progress_every_s)
        except TimeoutError:
            _say(config, "driving: " + driver.progress.line(config.orders))


async def _open_merchants(config: RunConfig, services: Services) -> None:
    """The run's merchants in the recharge center and the card system (kept when already there)."""
    keys_dir = services.keys_dir or DEFAULT_KEYS_DIR
    await open_merchants(services.recharge, services.card, keys_dir, config.merchants, services.auth)
    for m in config.merchants:
        _say(config, f"merchant {m.merchant_id} ({m.mode}, mchid {m.mchid}): {describe_rule(m.rule)}")


async def execute(config: RunConfig, services: Services) -> RunResult:
    started = time.monotonic()
    timings: dict[str, float] = {}
    notes = [f"missing flag: {m}" for m in services.missing_flags]
    tag = run_tag(config.profile.name, config.seed, config.nonce)
    plans = plan_orders(config.seed, config.orders, tag, config.shares, config.merchant_ids)
    await _open_merchants(config, services)
    async with Stubs.open(services.recharge, services.card, services.wechat, services.auth) as stubs:
        driver = Driver(stubs, plans, config.concurrency, spend_wait_s=config.quiet_timeout_s + 30)
        await driver.prepare()
        cards = set(driver.cards)
        await _set_faults(stubs, config.profile, config.seed)
        _say(config, f"{config.orders} orders over {len(config.merchants)} merchants, concurrency "
             f"{config.concurrency}, {len(cards)} cards, tag {tag}")
        done = asyncio.Event()
        monkey = None
        side_tasks = [asyncio.ensure_future(_print_progress(config, driver, done))]
        if config.profile.kills:
            if services.owned:
                monkey = CrashMonkey(services, config.seed, config.profile.kills, config.orders)
                driver.on_created = monkey.notice
                side_tasks.append(asyncio.ensure_future(monkey.during_drive(done)))
            else:
                notes.append("crash: skipped, the services were not started by this run (--targets)")
        run_days = {business_date(utc_now()).isoformat()}
        await driver.run()
        done.set()
        await asyncio.gather(*side_tasks)
        timings["drive"] = time.monotonic() - started
        _say(config, "drove: " + driver.progress.line(config.orders))
        tally = await _collect_and_clear_faults(stubs)
        nudger = SentinelNudger(stubs)
        wait_started = time.monotonic()
        if monkey is not None:
            await monkey.during_wait()
        quiet = await _wait_quiet(config, stubs, cards, config.quiet_timeout_s, nudger)
        # Late work still in flight (late successes, lock waits, delayed notifications) lands now.
        await asyncio.sleep(config.profile.max_delay_ms / 1000 + 0.5)
        quiet = quiet and await _wait_quiet(config, stubs, cards, 15.0, nudger)
        timings["quiet"] = time.monotonic() - wait_started
        await driver.stop_watchers()
        if monkey is not None:
            tally.counts[("recharge", "process", "KILL9")] = monkey.kills
            notes += [f"crash monkey: {e}" for e in monkey.errors]
            if services.replicas > 1:
                notes.append(f"crash monkey killed {monkey.by_node}")
        if not nudger.available:
            notes.append("RechargeOps.RunSentinel is UNIMPLEMENTED: waited on the services alone")
        if not quiet:
            notes.append(f"not quiet after {config.quiet_timeout_s:.0f}s: unsettled orders are I5 violations")
        run_days.add(business_date(utc_now()).isoformat())
        observe_started = time.monotonic()
        kills = monkey.kill_log if monkey is not None else {}
        observation = await observe(stubs, config.accounts, cards, driver.log, services.sp_mchid, kills)
        result = check(observation)
        timings["observe"] = time.monotonic() - observe_started
        reconcile_started = time.monotonic()
        found, said = await _reconcile(services, run_days)
        result.violations.extend(found)
        notes += said
        timings["reconcile"] = time.monotonic() - reconcile_started
    timings["total"] = time.monotonic() - started
    notes += [f"driver: {e}" for e in driver.progress.errors[:20]]
    return RunResult(
        config, tag, sorted(cards), plans, driver.progress, tally, observation, result, quiet, timings, notes,
        config.accounts, services.replicas, services.db, services.wire,
    )


async def _reconcile(services: Services, days: set[str]) -> tuple[list[Violation], list[str]]:
    """R: the daily three-way reconciliation of the run's business day(s) (+08:00; two when the
    run crossed midnight there) finds no difference between WeChat's bill, the orders and the card
    journal. Orders left in MANUAL_REVIEW are pending there, not differences."""
    if services.stack is None:
        return [], ["reconciliation: skipped, the services were not started by this run (--targets)"]
    address = services.stack.recharges[0].address
    token, tls = services.auth.token, services.auth.tls
    found: list[Violation] = []
    notes: list[str] = []
    for day in sorted(days):
        try:
            report = await asyncio.to_thread(
                reconcile_day, address, token, day, tls=tls, settle_within=RECONCILE_SETTLE_S, interval=0.5
            )
        except grpc.RpcError as error:
            found.append(Violation("R", day, f"the reconciliation could not run: {error}"))
            continue
        for run in report.runs:
            if run.status != "COMPLETED":
                said = f"{day}: reconciliation {run.status}: {run.detail}"
                found.append(Violation("R", run.merchant_id, said))
        for item in report.items:
            found.append(
                Violation(
                    "R",
                    item.order_no,
                    f"{day} {item.merchant_id} {item.category}: {item.detail} (WeChat: {item.wechat}; "
                    f"ours: {item.ours}; card: {item.card})",
                )
            )
        pending = sum(run.pending for run in report.runs)
        notes.append(f"reconciliation {day}: {report.differences} difference(s), {pending} pending")
    return found, notes


#: How long the chaos run re-runs a reconciliation while orders are pending (MANUAL_REVIEW stays).
RECONCILE_SETTLE_S = 3.0
