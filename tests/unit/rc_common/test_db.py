"""The write path: WAL + synchronous=FULL, BEGIN IMMEDIATE for writers, group commit that answers a
unit only once it is durable, and one unit's failure never touching the others of its group."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, text

from rc_common.db import Database
from tests.waiting import eventually


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/w.db")
    await database.write(lambda conn: conn.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)")))
    yield database
    await database.dispose()


def insert(x: int, *, fail: bool = False) -> Any:
    def unit(conn: Connection) -> int:
        conn.execute(text("INSERT INTO t (x) VALUES (:x)"), {"x": x})
        if fail:
            raise ValueError(f"unit {x} changed its mind")
        return x

    return unit


def rows(path: str) -> list[int]:
    """What another connection (another process, say) sees on disk."""
    with sqlite3.connect(path) as conn:
        return [x for (x,) in conn.execute("SELECT x FROM t ORDER BY x")]


def queued(db: Database) -> int:
    """Units waiting for the writer thread (its queue is its own business)."""
    assert db._writer is not None
    return db._writer._queue.qsize()


class Gate:
    """Holds the writer thread inside a unit until released, so later units queue up."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def unit(self, conn: Connection) -> None:
        self.entered.set()
        self.release.wait(10)


async def test_sqlite_pragmas_are_wal_and_full_sync(db: Database) -> None:
    assert await db.read(lambda conn: conn.execute(text("PRAGMA journal_mode")).scalar()) == "wal"
    assert await db.read(lambda conn: conn.execute(text("PRAGMA synchronous")).scalar()) == 2  # FULL


async def test_writers_begin_immediate_and_snapshot_readers_deferred(db: Database) -> None:
    seen: list[str] = []

    @event.listens_for(db.sync_engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("BEGIN"):
            seen.append(statement)

    await db.write(insert(1))
    await db.read(lambda conn: conn.execute(text("SELECT count(*) FROM t")).scalar())  # autocommit
    # … and leaves no read transaction open behind it (it would pin an old snapshot)
    assert not await db.read(lambda conn: conn.connection.dbapi_connection.in_transaction)  # type: ignore[union-attr]
    await db.read(lambda conn: conn.execute(text("SELECT count(*) FROM t")).scalar(), snapshot=True)
    assert seen == ["BEGIN IMMEDIATE", "BEGIN"]


async def test_concurrent_read_modify_write_units_lose_no_update(db: Database) -> None:
    await db.write(lambda conn: conn.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)")))
    await db.write(lambda conn: conn.execute(text("INSERT INTO counter VALUES (0)")))

    def increment(conn: Connection) -> None:
        n = conn.execute(text("SELECT n FROM counter")).scalar_one()
        conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    await asyncio.gather(*(db.write(increment) for _ in range(200)))
    assert await db.read(lambda conn: conn.execute(text("SELECT n FROM counter")).scalar_one()) == 200
    assert db.stats.commits < db.stats.units  # they were grouped


async def test_a_failing_unit_is_rolled_back_alone_and_its_group_commits_once(db: Database) -> None:
    gate = Gate()
    holding = asyncio.ensure_future(db.write(gate.unit))
    await asyncio.to_thread(gate.entered.wait, 10)
    commits = db.stats.commits
    group = [asyncio.ensure_future(db.write(insert(x, fail=x == 2))) for x in (1, 2, 3)]
    await eventually(lambda: queued(db) == 3, what="the three units queueing behind the gate")
    gate.release.set()
    results = await asyncio.gather(holding, *group, return_exceptions=True)
    assert results[1] == 1 and results[3] == 3
    assert isinstance(results[2], ValueError)
    assert rows(str(db.url.database)) == [1, 3]
    assert db.stats.commits - commits == 2  # the gate's group, then one for all three
    assert db.stats.failed_units == 1


async def test_a_unit_is_answered_only_after_its_commit_is_durable(db: Database) -> None:
    in_commit = threading.Event()
    let_commit = threading.Event()

    @event.listens_for(db.sync_engine, "commit")
    def slow_commit(_conn: Any) -> None:
        in_commit.set()
        let_commit.wait(10)

    writing = asyncio.ensure_future(db.write(insert(7)))
    await asyncio.to_thread(in_commit.wait, 10)
    await asyncio.sleep(0.1)  # time must pass: an answer given too early would arrive meanwhile
    assert not writing.done()  # the COMMIT has not returned: no answer yet
    assert rows(str(db.url.database)) == []
    let_commit.set()
    assert await writing == 7
    assert rows(str(db.url.database)) == [7]  # answered means on disk for everyone


async def test_a_failed_commit_fails_every_unit_of_the_group(db: Database) -> None:
    @event.listens_for(db.sync_engine, "commit")
    def broken_disk(_conn: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    results = await asyncio.gather(*(db.write(insert(x)) for x in (1, 2)), return_exceptions=True)
    assert all(isinstance(result, Exception) for result in results)
    event.remove(db.sync_engine, "commit", broken_disk)
    assert rows(str(db.url.database)) == []
    await db.write(insert(3))  # the writer recovered
    assert rows(str(db.url.database)) == [3]


async def test_the_session_api_still_rolls_back_unless_committed(db: Database) -> None:
    async with db.session() as session:
        await session.execute(text("INSERT INTO t VALUES (1)"))
    assert rows(str(db.url.database)) == []
