"""Chaos across replicas (issue 13): two recharge centers r1 and r2 on one PostgreSQL database,
started together on an empty one (their migrate steps at the same moment: one migrates, the other
finds the schema current, both come up), the driver's calls spread over them by round_robin, WeChat
notifying both, and the crash profiles killing a seeded random replica. A short seeded run per
profile breaks no promise — I7 included: no two replicas with mutating calls on one order in flight
at once — and both replicas really acted, on orders handed from one to the other.

Needs the PostgreSQL binaries (skipped without them, as every ``postgres`` test is).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.chaos.profiles import PROFILES
from scripts.chaos.run import RunConfig, execute
from scripts.chaos.services import Services, start_fresh
from tests.postgres import PostgresServer

pytestmark = pytest.mark.postgres

SEED = 5
ORDERS = 48
REPLICAS = 2


@pytest.fixture(scope="module")
def services(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    started = start_fresh(
        Path(tmp_path_factory.mktemp("chaos-replicas")), replicas=REPLICAS, db="postgresql", postgres=postgres
    )
    try:
        yield started
    finally:
        started.stop()


def events(log: Path) -> list[str]:
    found = []
    for line in log.read_text().splitlines():
        try:
            found.append(json.loads(line).get("event", ""))
        except ValueError:
            found.append("(not JSON)")
    return found


def test_replicas_started_together_on_an_empty_database_migrate_it_once_and_both_come_up(
    services: Services,
) -> None:
    assert services.stack is not None
    replicas = services.stack.recharges
    assert [r.args[r.args.index("--node-id") + 1] for r in replicas] == ["r1", "r2"]
    steps = [events(r.migrate_log_path) for r in replicas]
    assert sorted(e for step in steps for e in step if e in ("schema_migrated", "schema_current")) == [
        "schema_current", "schema_migrated"
    ], steps
    assert all(r.process is not None and r.process.poll() is None for r in replicas)
    assert services.recharge == "ipv4:" + ",".join(r.address for r in replicas)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", ["crash", "all"])
async def test_a_seeded_run_over_two_replicas_breaks_no_promise_and_no_order_has_two_actors(
    services: Services, name: str
) -> None:
    profile = PROFILES[name]
    run = await execute(
        RunConfig(profile, SEED, ORDERS, concurrency=8, quiet_timeout_s=60, quiet_output=True), services
    )
    print(f"chaos profile {name} seed {SEED} over {REPLICAS} replicas: replay with python -m scripts.chaos "
          f"--profile {name} --seed {SEED} --orders {ORDERS} --concurrency 8 --replicas {REPLICAS} "
          f"--db postgresql; one actor: {run.result.summary['one_actor']}; kills {run.observation.kills}")
    assert run.quiet, run.notes
    assert [str(v) for v in run.result.violations] == []
    assert len(run.observation.orders) == ORDERS
    assert run.tally.by_kind().get("KILL9") == profile.kills
    assert sum(len(t) for t in run.observation.kills.values()) == profile.kills
    assert set(run.observation.kills) <= {"r1", "r2"}
    one_actor = run.result.summary["one_actor"]
    assert one_actor["nodes"] == ["r1", "r2"], "both replicas must have made mutating calls"
    assert one_actor["orders_acted_on_by_several_nodes"] > 0, "I7 must have seen orders handed over"
