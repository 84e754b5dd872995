"""A short seeded chaos run on the HTTP wire: the recharge center pays through WeChat Pay APIv3
over HTTPS (the simulator's facade) and takes notifications on its HTTPS endpoint
(``scripts.stack`` wire "http"), with the ``all`` profile's faults — which reach the HTTP routes
under their gRPC method names — and a crash; zero violations (I1-I7, M1-M4), faults really
injected, and the payments really went over HTTPS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.chaos.profiles import PROFILES
from scripts.chaos.run import RunConfig, execute
from scripts.chaos.services import Services, start_fresh
from scripts.merchants import CHAOS_MERCHANTS

SEED = 5
ORDERS = 30


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    started = start_fresh(Path(tmp_path_factory.mktemp("chaos-http")), wire="http")
    try:
        yield started
    finally:
        started.stop()


def logged(path: Path, event: str) -> list[dict[str, object]]:
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            records.append(record)
    return records


@pytest.mark.timeout(240)
async def test_a_seeded_chaos_run_on_the_http_wire_breaks_no_promise(services: Services) -> None:
    profile = PROFILES["all"]
    run = await execute(
        RunConfig(profile, SEED, ORDERS, concurrency=8, quiet_timeout_s=60, quiet_output=True), services
    )
    print(f"chaos on the HTTP wire, seed {SEED}: replay with python -m scripts.chaos --wire http "
          f"--profile all --seed {SEED} --orders {ORDERS} --concurrency 8")
    assert run.wire == "http"
    assert run.quiet, run.notes
    assert [str(v) for v in run.result.violations] == []
    assert len(run.observation.orders) == ORDERS
    assert set(run.result.summary["merchants"]) == {m.merchant_id for m in CHAOS_MERCHANTS}
    injected = {k: n for k, n in run.tally.by_kind().items() if k != "KILL9"}
    assert sum(injected.values()) > 0
    assert run.tally.by_kind().get("KILL9") == profile.kills
    assert any(o.status == "CREDITED" for o in run.observation.orders)
    # The money moved on WeChat's wire: notifications POSTed to the recharge center's HTTPS
    # endpoint, never to its gRPC Notify.
    stack = services.stack
    assert stack is not None and stack.notify_url.startswith("https://")
    delivered = logged(stack.wechat.log_path, "notification_delivered")
    assert delivered and {d["target"] for d in delivered} == {stack.notify_url}
