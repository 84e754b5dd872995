"""The SQLite policy: WAL, synchronous=FULL, BEGIN IMMEDIATE for writers, no lost updates."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from rc_common.db import Database


async def test_sqlite_pragmas_are_wal_and_full_sync(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/p.db")
    try:
        async with db.session(readonly=True) as session:
            assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await session.execute(text("PRAGMA synchronous"))).scalar() == 2  # FULL
    finally:
        await db.dispose()


async def test_writers_begin_immediate_and_readers_deferred(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/b.db")
    seen: list[str] = []

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("BEGIN"):
            seen.append(statement)

    try:
        async with db.session() as session:
            await session.execute(text("CREATE TABLE t (x INTEGER)"))
            await session.commit()
        async with db.session(readonly=True) as session:
            await session.execute(text("SELECT count(*) FROM t"))
        assert seen == ["BEGIN IMMEDIATE", "BEGIN"]
    finally:
        await db.dispose()


async def test_concurrent_read_modify_write_loses_no_update(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    try:
        async with db.session() as session:
            await session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
            await session.execute(text("INSERT INTO counter VALUES (0)"))
            await session.commit()

        async def increment() -> None:
            async with db.session() as session:
                n = (await session.execute(text("SELECT n FROM counter"))).scalar_one()
                await asyncio.sleep(0)  # let other writers try to interleave
                await session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
                await session.commit()

        await asyncio.gather(*(increment() for _ in range(50)))
        async with db.session(readonly=True) as session:
            assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 50
    finally:
        await db.dispose()


async def test_uncommitted_session_rolls_back(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/r.db")
    try:
        async with db.session() as session:
            await session.execute(text("CREATE TABLE t (x INTEGER)"))
            await session.commit()
        async with db.session() as session:
            await session.execute(text("INSERT INTO t VALUES (1)"))
        async with db.session(readonly=True) as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
    finally:
        await db.dispose()
