"""The recharge center as a process with ``--log-format json``: every line it writes on stdout and
stderr is one JSON object carrying its node id, the standard library's lines (APScheduler's
"Running job …", asyncio's) included."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from scripts.stack import ServiceProcess
from tests.waiting import wait_until
from wechat_mock.adapters.keys import PlatformKeys


def parsed(path: Path) -> list[dict[str, Any]]:
    """Every line of the log, parsed (a line that is not JSON fails the test, naming it)."""
    events = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            events.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"line {number} of {path} is not JSON: {line!r}") from None
    return events


def test_every_line_of_a_running_center_is_json_with_its_node(
    tmp_path: Path, platform_keys: tuple[Path, PlatformKeys]
) -> None:
    center = ServiceProcess(
        "recharge",
        "recharge_service",
        [
            "--db", f"sqlite+aiosqlite:///{tmp_path / 'r.db'}",
            "--wechat-keys-dir", str(platform_keys[0]),
            "--node-id", "n1",
            "--log-level", "debug",  # the scheduler's INFO lines are shown only at debug
            "--sentinel-interval", "0.2",
        ],
        tmp_path / "recharge.log",
    )  # fmt: skip
    center.migrate()  # logs to recharge-migrate.log
    center.migrate()  # its own step and log: the service refuses a schema that is behind
    center.start("127.0.0.1:0")  # stdout and stderr both go to the log
    try:

        def scheduler_ran() -> int:
            runs = [e for e in parsed(center.log_path) if "executed successfully" in e["event"]]
            return len(runs) >= 2 and len(runs)

        wait_until(scheduler_ran, what="two sentinel runs logged by APScheduler")
    finally:
        assert center.stop(signal.SIGTERM) == 0
    events = parsed(center.log_path)
    assert parsed(center.migrate_log_path)  # the migrate step's lines (Alembic's included) too
    assert {e["node"] for e in events} == {"n1"}
    names = {e["event"] for e in events}
    assert {"server_started", "server_stopped"} <= names
    assert {"apscheduler.executors.default", "asyncio"} <= {e.get("logger") for e in events}
