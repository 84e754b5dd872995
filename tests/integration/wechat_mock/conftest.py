"""Fixtures: an in-process WeChat simulator (built by ``wechat_mock.bootstrap`` on 127.0.0.1:0,
SQLite under tmp_path, short time scale) and a fake merchant receiving its notifications.

``WECHAT_TEST_DB_URL=postgresql+asyncpg://…`` runs the in-process tests on PostgreSQL instead
(the simulator's tables are dropped at the start of each test)."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from rc_common.channels import aio_channel
from rc_common.db import Database
from rc_common.migrations import VERSION_TABLE, migrate
from tests import auth
from tests.auth import write_key_file
from tests.integration.wechat_mock.fakes import FakeMerchant, Stubs
from wechat_mock import bootstrap
from wechat_mock.adapters.keys import PlatformKeys, ensure_keys
from wechat_mock.adapters.tables import metadata
from wechat_mock.migrations import SCHEMA
from wechat_mock.settings import WechatSettings

#: The time scale of these tests: retries every 0.2 s, refunds settle after 0.3 s.
FAST = {
    "notify_schedule": (0.2, 0.2, 0.2, 0.2, 0.2),
    "refund_delay": 0.3,
    "notify_timeout": 1.0,
    "idle_poll": 1.0,
    "grace": 1.0,
}


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wechat-keys")
    ensure_keys(directory)
    return directory


@pytest.fixture
def keys(keys_dir: Path) -> PlatformKeys:
    return ensure_keys(keys_dir)


@pytest.fixture
async def merchant() -> AsyncIterator[FakeMerchant]:
    fake = FakeMerchant()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@dataclasses.dataclass
class Running:
    simulator: bootstrap.WechatSimulator
    stubs: Stubs
    settings: WechatSettings


Launcher = Callable[..., Awaitable[Running]]


@pytest.fixture
def db_backend() -> str:
    """SQLite by default; modules where concurrency matters override this to run on both."""
    return "sqlite"


@pytest.fixture
async def launch(
    tmp_path: Path, keys_dir: Path, merchant: FakeMerchant, db_backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[Launcher]:
    """``await launch(**settings)`` starts a simulator (same DB for every launch of one test)."""
    running: list[Running] = []
    if db_backend == "postgresql":
        db_url = request.getfixturevalue("postgres").createdb(f"wechat_{uuid.uuid4().hex[:12]}")
    else:
        db_url = os.environ.get("WECHAT_TEST_DB_URL") or f"sqlite+aiosqlite:///{tmp_path / 'wechat.db'}"
    if not db_url.startswith("sqlite"):
        await _drop_tables(db_url)

    async def start(**overrides: Any) -> Running:
        assert merchant.server is not None
        values: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "db": db_url,
            "keys_dir": str(keys_dir),
            "notify_target": merchant.server.address,
            "auth_key_file": write_key_file(tmp_path),
            **FAST,
            **overrides,
        }
        settings = WechatSettings(**values)
        await migrate(settings.db, SCHEMA)  # the step before every start (a no-op once at head)
        simulator = await bootstrap.build(settings)
        await simulator.start()
        channel = aio_channel(simulator.address, auth.client())  # FaultControl needs the test role
        item = Running(simulator, Stubs(channel), settings)
        running.append(item)
        return item

    try:
        yield start
    finally:
        for item in reversed(running):
            await item.stubs.channel.close()
            await item.simulator.stop(0.5)


async def _drop_tables(url: str) -> None:
    db = Database(url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.exec_driver_sql(f"DROP TABLE IF EXISTS {VERSION_TABLE}")
    finally:
        await db.dispose()


@pytest.fixture
async def wechat(launch: Launcher) -> Running:
    return await launch()


@pytest.fixture
def stubs(wechat: Running) -> Stubs:
    return wechat.stubs
