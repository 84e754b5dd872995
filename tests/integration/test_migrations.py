"""The three services' migrations (``rc_common.migrations``), on SQLite and PostgreSQL: an empty
database migrated to head has exactly the tables the code declares, migrating again changes
nothing, and migrations started at the same moment on one empty database run one after the other.

The recharge center's own history (an old database with data, refusal at start):
``tests/integration/recharge_service/test_migrations.py``."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, text

from card_service.adapters.tables import metadata as card_tables
from card_service.migrations import SCHEMA as CARD
from rc_common.db import Database
from rc_common.migrations import LOCK_KEY, Schema, SchemaBehind, migrate, require_current, upgrade
from recharge_service.adapters.orm import metadata as recharge_tables
from recharge_service.migrations import SCHEMA as RECHARGE
from scripts.stack import ROOT
from tests.postgres import PostgresServer
from tests.waiting import eventually
from wechat_mock.adapters.tables import metadata as wechat_tables
from wechat_mock.migrations import SCHEMA as WECHAT

SERVICES: dict[str, tuple[Schema, MetaData]] = {
    "recharge_service": (RECHARGE, recharge_tables),
    "card_service": (CARD, card_tables),
    "wechat_mock": (WECHAT, wechat_tables),
}
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

NewDatabase = Callable[[str], str]


@pytest.fixture(params=BACKENDS)
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> NewDatabase:
    """``new_database(name)``: the URL of a new, empty database on this test's backend."""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        return lambda name: server.createdb(f"{name}_{uuid.uuid4().hex[:12]}")
    return lambda name: f"sqlite+aiosqlite:///{tmp_path / name}.db"


def differences(conn: Connection, metadata: MetaData) -> list[tuple[str, ...]]:
    """Alembic's comparison of the database with ``metadata`` (types and server defaults too), one
    ``(operation, table, object)`` per difference."""
    context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    found: list[tuple[str, ...]] = []
    for diff in compare_metadata(context, metadata):
        for step in diff if isinstance(diff, list) else [diff]:
            # e.g. ("add_column", None, "recharge_orders", Column), ("add_index", Index),
            # ("modify_default", None, "timeline_events", "node", {...}, old, new)
            operation, *rest = step
            named = [item if isinstance(item, str) else getattr(item, "name", None) for item in rest[:3]]
            found.append((operation, *[str(name) for name in named if name is not None]))
    return sorted(found)


async def differences_at(url: str, metadata: MetaData) -> list[tuple[str, ...]]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(differences, metadata)
    finally:
        await db.dispose()


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_migrating_an_empty_database_gives_exactly_the_tables_the_code_declares(
    service: str, new_database: NewDatabase
) -> None:
    schema, metadata = SERVICES[service]
    migrated_url, reference_url = new_database("migrated"), new_database("reference")

    first = await migrate(migrated_url, schema)
    again = await migrate(migrated_url, schema)

    assert (first.before, first.adopted, first.after) == (None, None, schema.head)
    assert (again.before, again.adopted, again.after, again.changed) == (
        schema.head,
        None,
        schema.head,
        False,
    )
    reference = Database(reference_url)
    try:
        async with reference.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await reference.dispose()
    # What the comparison reports for the code's own create_all is the comparator's noise (on
    # SQLite it misreads an empty-string default); the migrated database must show nothing else.
    noise = await differences_at(reference_url, metadata)
    assert {kind for kind, *_ in noise} <= {"modify_default"}, noise
    assert await differences_at(migrated_url, metadata) == noise


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_a_service_refuses_an_empty_database_naming_the_migrate_command(
    service: str, tmp_path: Path
) -> None:
    schema, _ = SERVICES[service]
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    db = Database(url)
    try:
        with pytest.raises(SchemaBehind) as refused:
            await require_current(db, schema)
    finally:
        await db.dispose()
    assert f"has no schema yet, this version needs {schema.head}" in str(refused.value)
    assert f"run `python -m {service} migrate --db {url}`" in str(refused.value)


def migrate_process(module: str, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module, "migrate", "--db", url, "--log-format", "json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def events(output: str) -> list[str]:
    return [json.loads(line)["event"] for line in output.splitlines() if line.startswith("{")]


async def test_migrations_started_at_the_same_moment_on_one_empty_database_run_one_after_the_other(
    new_database: NewDatabase,
) -> None:
    url = new_database("racing")
    processes = [migrate_process("recharge_service", url) for _ in range(3)]
    outputs = [process.communicate(timeout=120)[0] for process in processes]

    assert [process.returncode for process in processes] == [0, 0, 0], outputs
    finished = sorted(
        "schema_migrated" if "schema_migrated" in events(o) else "schema_current" for o in outputs
    )
    assert finished == ["schema_current", "schema_current", "schema_migrated"], outputs
    db = Database(url)
    try:
        await require_current(db, RECHARGE)
        assert await upgrade(db, RECHARGE) is not None
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_on_postgresql_a_migration_waits_for_the_lock_another_migration_holds(
    postgres: PostgresServer,
) -> None:
    url = postgres.createdb(f"locked_{uuid.uuid4().hex[:12]}")
    holder = Database(url)
    try:
        async with holder.engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
            await conn.commit()
            process = migrate_process("recharge_service", url)

            async def waiting_for_the_lock() -> Any:
                async with holder.engine.connect() as probe:
                    waiting = await probe.scalar(
                        text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                    )
                return waiting == 1

            await eventually(waiting_for_the_lock, within=60, what="the migration waiting for the lock")
            assert process.poll() is None
            with pytest.raises(SchemaBehind):
                await require_current(holder, RECHARGE)  # nothing was created meanwhile
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            await conn.commit()
            output = process.communicate(timeout=120)[0]
        assert process.returncode == 0, output
        assert "schema_migrated" in events(output)
        await require_current(holder, RECHARGE)
    finally:
        await holder.dispose()
