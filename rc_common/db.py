"""The database layer shared by the three services: SQLite (embedded default) or PostgreSQL.

A unit of work is a plain function ``unit(conn) -> T`` over a synchronous SQLAlchemy
``Connection``. The event loop never runs other work while a unit holds a write lock:

- ``await db.write(unit)`` hands the whole unit to the database in one hop. On SQLite a single
  writer thread runs the units queued meanwhile back to back inside ONE ``BEGIN IMMEDIATE …
  COMMIT`` (group commit: one fsync for many units), each unit inside its own SAVEPOINT so that a
  unit that raises is rolled back alone and the others still commit. Its caller is answered only
  after the COMMIT returned, i.e. after the fsync (``synchronous=FULL``): an acknowledged write is
  durable. When the COMMIT itself fails, every unit of the group gets that error and none of them
  is committed. On PostgreSQL each unit is its own transaction on the asyncpg pool
  (``AsyncConnection.run_sync``), which overlaps them; the server's WAL writer groups the commits.
- ``await db.read(query)`` runs a read-only function. On SQLite it runs at once on the calling
  thread over a per-thread connection (WAL readers never wait for the writer); on PostgreSQL on a
  pooled connection. Each statement sees what was committed when it started; a query whose
  statements must agree with each other asks for ``snapshot=True`` (SQLite: a deferred ``BEGIN``;
  PostgreSQL: ``REPEATABLE READ``).

SQLite keeps WAL, ``synchronous=FULL``, foreign keys and a generous busy timeout on every
connection. ``stats`` counts units, commits, statements and failed units; with
``RC_DB_STATS_FILE`` set, a process writes them to that JSON file every half second (the bench
reads it to report commits and statements per top-up).

``session()`` (an ``AsyncSession`` on the async engine) remains for tests and tools; the services'
hot paths use ``read``/``write``. Schemas are made and checked by ``rc_common.migrations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

T = TypeVar("T")
Unit = Callable[[Connection], T]

#: Units one SQLite group commit takes at most (more wait for the next COMMIT).
MAX_GROUP = 256
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
STATS_ENV = "RC_DB_STATS_FILE"


@dataclass
class DbStats:
    """Counters of the write path (read by the bench; cheap enough to keep always on)."""

    #: Units of work committed (each is one logical write transaction).
    units: int = 0
    #: Units that raised and were rolled back (alone, inside their group).
    failed_units: int = 0
    #: Physical COMMITs (on SQLite one per group, on PostgreSQL one per unit).
    commits: int = 0
    #: SQL statements sent, transaction control (BEGIN, SAVEPOINT, COMMIT …) not counted.
    statements: int = 0
    #: Read-only queries run through ``read``.
    reads: int = 0
    #: Units committed per label given to ``write`` (e.g. ``outbox``), to tell background work apart.
    labelled: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)

    def count(self, label: str) -> None:
        self.units += 1
        if label:
            self.labelled[label] = self.labelled.get(label, 0) + 1


#: PostgreSQL connections a process keeps open, and how many more it may open under load
#: (SQLAlchemy's ``pool_size``/``max_overflow``; the services' ``--db-pool-size``/``--db-max-overflow``).
POOL_SIZE = 10
MAX_OVERFLOW = 20


class Database:
    """Engines plus the policy for running units of work on them. ``pool_size`` and
    ``max_overflow`` size the PostgreSQL connection pool (SQLite has its own writer and readers)."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW
    ) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.stats = DbStats()
        if self.is_sqlite and self.url.database and self.url.database != ":memory:":
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # No pre-ping: it costs a round trip per checkout on the hot path. A connection that
            # died with the server fails its unit (an unknown outcome the callers retry) and is
            # dropped from the pool; recycling bounds how long an idle one is trusted.
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_recycle=300)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._session_lock = asyncio.Lock() if self.is_sqlite else None
        self._sync: Engine | None = None
        self._writer: _GroupCommitWriter | None = None
        self._readers = threading.local()
        self._reader_conns: list[Connection] = []
        if self.is_sqlite:
            if self.url.database in (None, "", ":memory:"):
                raise ValueError("SQLite needs a database file (the writer and readers share it)")
            _install_sqlite_policy(self.engine.sync_engine)
            self._sync = create_engine(
                self.url.set(drivername="sqlite"),
                echo=echo,
                connect_args={"timeout": 30, "check_same_thread": False},
            )
            _install_sqlite_policy(self._sync)
            _count_statements(self._sync, self.stats)
            self._writer = _GroupCommitWriter(self._sync, self.stats)
        else:
            _count_statements(self.engine.sync_engine, self.stats)
        self._stats_dumper = _StatsDumper.from_env(self.stats)

    @property
    def sync_engine(self) -> Engine:
        """The synchronous engine that ``read`` and ``write`` run their units on."""
        return self._sync if self._sync is not None else self.engine.sync_engine

    # -- the hot path -------------------------------------------------------------------------

    async def write(self, unit: Unit[T], *, label: str = "") -> T:
        """Run ``unit`` as one isolated, durable write transaction and return what it returned.
        ``label`` (optional) counts the unit under that name too (``stats.labelled``).

        Raises what the unit raised (it was rolled back, nothing of it is written) or the
        database's error. Cancelling the caller does not withdraw a unit already handed over:
        like a lost response, it may still commit."""
        if self._writer is not None:
            return await self._writer.submit(unit, label)
        try:
            async with self.engine.begin() as conn:
                value = await conn.run_sync(unit)
        except BaseException:
            self.stats.failed_units += 1
            raise
        self.stats.count(label)
        self.stats.commits += 1
        return value

    async def read(self, query: Unit[T], *, snapshot: bool = False) -> T:
        """Run a read-only ``query`` and return its result; ``snapshot``: all its statements see
        the same committed state (one statement always does)."""
        self.stats.reads += 1
        if self._sync is not None:
            conn = self._reader(snapshot)
            if snapshot:
                with conn.begin():
                    return query(conn)
            try:
                return query(conn)  # autocommit: each statement is its own read transaction
            finally:
                conn.rollback()  # ends SQLAlchemy's bookkeeping only (nothing was begun in SQLite)
        async with self.engine.connect() as reader:
            if snapshot:
                await reader.execution_options(isolation_level="REPEATABLE READ")
            return await reader.run_sync(query)

    def _reader(self, snapshot: bool) -> Connection:
        """This thread's reading connection: autocommit, or one that begins deferred."""
        name = "snapshot" if snapshot else "plain"
        conn: Connection | None = getattr(self._readers, name, None)
        if conn is None or conn.closed:
            assert self._sync is not None
            conn = self._sync.connect()
            if snapshot:
                conn = conn.execution_options(sqlite_begin="BEGIN")
            else:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            setattr(self._readers, name, conn)
            self._reader_conns.append(conn)
        return conn

    # -- tools, tests -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def session(self, *, readonly: bool = False) -> AsyncIterator[AsyncSession]:
        """An ``AsyncSession`` whose transaction rolls back unless the caller commits (tests,
        tools). On SQLite a writing session begins IMMEDIATE and queues on an asyncio lock."""
        lock = self._session_lock if not readonly else None
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
        if self._writer is not None:
            await asyncio.to_thread(self._writer.stop)
        for conn in self._reader_conns:
            with contextlib.suppress(Exception):
                conn.close()
        self._reader_conns.clear()
        self._readers = threading.local()
        if self._sync is not None:
            self._sync.dispose()
        self._stats_dumper.stop()
        await self.engine.dispose()


class _Submitted:
    __slots__ = ("future", "label", "loop", "unit")

    def __init__(
        self, unit: Unit[Any], label: str, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
    ) -> None:
        self.unit = unit
        self.label = label
        self.loop = loop
        self.future = future


_STOP = object()


class _GroupCommitWriter:
    """One thread, one connection: every queued unit of a group runs in one transaction."""

    def __init__(self, engine: Engine, stats: DbStats) -> None:
        self._engine = engine
        self._stats = stats
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def submit(self, unit: Unit[T], label: str) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._ensure_started()
        self._queue.put(_Submitted(unit, label, loop, future))
        return await future

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
                thread.start()
                self._thread = thread

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        conn = self._engine.connect()
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                group = [first]
                stop = False
                while len(group) < MAX_GROUP:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        stop = True
                        break
                    group.append(more)
                if not self._commit_group(conn, group):
                    # The transaction failed as a whole (BEGIN or COMMIT): start over on a fresh
                    # connection rather than trust the state this one was left in.
                    with contextlib.suppress(Exception):
                        conn.invalidate()
                        conn.close()
                    conn = self._engine.connect()
                if stop:
                    return
        finally:
            conn.close()

    def _commit_group(self, conn: Connection, group: list[_Submitted]) -> bool:
        """Run and commit the group, answer every unit; False when the transaction failed."""
        results: list[tuple[bool, Any]] = []
        committed = False
        alone = len(group) == 1  # no other unit to protect: no savepoint
        try:
            with conn.begin() as transaction:  # BEGIN IMMEDIATE … COMMIT (durable once it ends)
                for item in group:
                    savepoint = None if alone else conn.begin_nested()
                    try:
                        value = item.unit(conn)
                    except BaseException as exc:  # the unit's own failure: undo it alone
                        (savepoint or transaction).rollback()
                        results.append((False, exc))
                    else:
                        if savepoint is not None:
                            savepoint.commit()
                        results.append((True, value))
        except BaseException as exc:  # BEGIN or COMMIT failed: nothing of the group is written
            results = [(False, exc)] * len(group)
        else:
            committed = True  # the connection is in a clean state again
            if not alone or results[0][0]:
                self._stats.commits += 1
        for item, (ok, value) in zip(group, results, strict=True):
            if ok:
                self._stats.count(item.label)
            else:
                self._stats.failed_units += 1
            with contextlib.suppress(RuntimeError):  # the caller's event loop is gone: nobody to tell
                item.loop.call_soon_threadsafe(_settle, item.future, ok, value)
        return committed


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _install_sqlite_policy(sync_engine: Engine) -> None:
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
        options = conn.get_execution_options()
        if options.get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql(options.get("sqlite_begin", "BEGIN IMMEDIATE"))


def _count_statements(sync_engine: Engine, stats: DbStats) -> None:
    @event.listens_for(sync_engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(_CONTROL):
            stats.statements += 1


class _StatsDumper:
    """Writes ``stats`` as JSON to ``$RC_DB_STATS_FILE`` every half second (bench only)."""

    def __init__(self, stats: DbStats, path: Path | None) -> None:
        self._stats = stats
        self._path = path
        self._stopped = threading.Event()
        if path is not None:
            threading.Thread(target=self._run, name="db-stats", daemon=True).start()

    @classmethod
    def from_env(cls, stats: DbStats) -> _StatsDumper:
        value = os.environ.get(STATS_ENV, "")
        return cls(stats, Path(value) if value else None)

    def _run(self) -> None:
        while not self._stopped.wait(0.5):
            self.dump()

    def dump(self) -> None:
        if self._path is None:
            return
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._stats.snapshot()))
        tmp.replace(self._path)

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self.dump()
