"""SQLAlchemy async engines for SQLite (embedded default) and PostgreSQL.

SQLite: WAL journal, ``synchronous=FULL``, a generous busy timeout, and ``BEGIN IMMEDIATE`` for
every writing transaction, so read-modify-write never loses an update nor fails half way with
"database is locked". Writers inside one process also queue on an asyncio lock, which is much
cheaper than SQLite's busy polling. Read-only transactions use a plain deferred ``BEGIN``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


class Database:
    """An engine plus the policy for opening transactions on it."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite and self.url.database and self.url.database != ":memory:":
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            _install_sqlite_policy(self.engine)

    @contextlib.asynccontextmanager
    async def session(self, *, readonly: bool = False) -> AsyncIterator[AsyncSession]:
        """A session whose transaction rolls back unless the caller commits."""
        lock = self._write_lock if (self._write_lock and not readonly) else None
        if lock is not None:
            await lock.acquire()
        try:
            async with self.sessions() as session:
                if self.is_sqlite:
                    await session.connection(
                        execution_options={"sqlite_begin": "BEGIN" if readonly else "BEGIN IMMEDIATE"}
                    )
                try:
                    yield session
                finally:
                    if session.in_transaction():
                        await session.rollback()
        finally:
            if lock is not None:
                lock.release()

    async def dispose(self) -> None:
        await self.engine.dispose()


def _install_sqlite_policy(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling is off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN IMMEDIATE"))
