"""Schema migrations (Alembic) for the three services: an explicit step, checked at every start.

Each service keeps its history as hand-written revisions in ``<service>/migrations/versions/``
(``0001`` its baseline, then one file per change), whose ``env.py`` calls :func:`run_env`, and
names it with a :class:`Schema`. No ``alembic.ini``: the configuration is built here.

- :func:`upgrade` (``python -m <service> migrate``; ``create_schema`` in tests and tools) brings a
  database to the newest revision (head) in ONE transaction that holds a lock for its whole length:
  ``pg_advisory_xact_lock`` on PostgreSQL, the write lock (``BEGIN IMMEDIATE``) on SQLite. Two
  migrations started at once run one after the other; the second finds the schema at head and does
  nothing. A database made before migrations (tables, no ``alembic_version``) is adopted when its
  columns are exactly those of one revision: it is stamped at that revision, then upgraded.
- :func:`require_current` (each service's start) refuses a schema that is not at head and never
  changes one, so replicas starting together never race on DDL.

Errors, each naming the database and what to do::

    SchemaError               the schema is not the one this version runs on (a service refuses to start)
    ├── SchemaBehind          empty, at an older revision, or made before migrations with a known
    │                         revision's columns: `python -m <service> migrate` brings it to head
    ├── UnknownRevision       at a revision this version does not know (a newer version migrated it)
    └── OutdatedSchema        made before migrations and matching no revision (missing columns are
                              named): migrate cannot adopt it
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, text

from rc_common.db import Database
from rc_common.logs import get_logger

log = get_logger("migrations")

#: Where Alembic records the revision a database is at (its default name).
VERSION_TABLE = "alembic_version"
#: The ``pg_advisory_xact_lock`` key every migration holds ("rc_mig" in ASCII).
LOCK_KEY = 0x72635F6D6967

#: A database's tables and their columns.
Shape = Mapping[str, frozenset[str]]


class SchemaError(RuntimeError):
    """The database's schema is not the one this version runs on."""


class SchemaBehind(SchemaError):
    """Empty, at an older revision, or made before migrations: ``migrate`` brings it to head."""


class UnknownRevision(SchemaError):
    """At a revision this version's history does not have (a newer version migrated it)."""


class OutdatedSchema(SchemaError):
    """Made before migrations, and its columns are those of no revision: it cannot be adopted."""


@dataclass(frozen=True)
class Schema:
    """One service's schema history."""

    #: The service's package: messages name ``python -m {package} migrate``.
    package: str
    #: How messages call the database, e.g. "the recharge center's database".
    what: str
    #: The migrations directory (``env.py`` and ``versions/``).
    location: Path

    def config(self, connection: Connection | None = None, *, rehearsal: bool = False) -> Config:
        """Alembic's configuration; ``connection`` is the one ``env.py`` migrates (``rehearsal``:
        an in-memory copy, whose steps are not logged)."""
        config = Config()
        config.set_main_option("script_location", str(self.location))
        config.set_main_option("path_separator", "os")
        config.attributes["connection"] = connection
        config.attributes["rehearsal"] = rehearsal
        return config

    def script(self) -> ScriptDirectory:
        return ScriptDirectory.from_config(self.config())

    @property
    def head(self) -> str:
        head = self.script().get_current_head()
        if head is None:
            raise RuntimeError(f"{self.location} has no revisions")
        return head

    def revisions(self) -> list[str]:
        """Every revision, oldest first."""
        return [script.revision for script in reversed(list(self.script().walk_revisions()))]

    def describe(self, url: str) -> str:
        """``what`` and the database's URL (password hidden), capitalised to open a message."""
        return f"{self.what[:1].upper()}{self.what[1:]} {url}"

    def migrate_command(self, url: str) -> str:
        return f"python -m {self.package} migrate --db {url}"


@dataclass(frozen=True)
class Migrated:
    """What ``upgrade`` did."""

    #: The revision before (None: no revision recorded, an empty or pre-migration database).
    before: str | None
    #: The revision a database made before migrations was found at and stamped with, if any.
    adopted: str | None
    #: The revision now (head, unless a test asked for another).
    after: str

    @property
    def changed(self) -> bool:
        return self.adopted is not None or self.before != self.after


def run_env() -> None:
    """The body of every service's ``env.py``: run the migrations Alembic chose on the connection
    :func:`upgrade` opened and locked (inside its transaction, which it commits)."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("migrations run through `python -m <service> migrate`, not the alembic CLI")
    rehearsal = bool(context.config.attributes.get("rehearsal"))
    context.configure(
        connection=connection, target_metadata=None, on_version_apply=None if rehearsal else _log_step
    )
    with context.begin_transaction():
        context.run_migrations()


def _log_step(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """One revision applied (or a pre-migration database stamped), as a structured log line."""
    revision = step.up_revision
    if step.is_stamp:
        log.info("schema_stamped", revision=step.up_revision_id)
    elif isinstance(revision, Script):
        summary = revision.doc.strip().splitlines()[:1]
        log.info("schema_revision_applied", revision=step.up_revision_id, summary="".join(summary))


async def migrate(url: str, schema: Schema) -> Migrated:
    """``python -m <service> migrate``: bring the database at ``url`` to head (see :func:`upgrade`)."""
    db = Database(url)
    try:
        migrated = await upgrade(db, schema)
    finally:
        await db.dispose()
    shown = db.url.render_as_string(hide_password=True)
    if migrated.changed:
        log.info(
            "schema_migrated",
            database=shown,
            before=migrated.before or "",
            adopted=migrated.adopted or "",
            revision=migrated.after,
        )
    else:
        log.info("schema_current", database=shown, revision=migrated.after)
    return migrated


async def upgrade(db: Database, schema: Schema, to: str = "head") -> Migrated:
    """Bring ``db`` to head (tests: to revision ``to``) in one locked transaction; raises
    ``OutdatedSchema`` or ``UnknownRevision`` (nothing changed) when it cannot."""
    url = db.url.render_as_string(hide_password=True)
    with _quiet("alembic"):  # its own lines say less than ours (``_log_step``)
        async with db.engine.connect() as conn:
            return await conn.run_sync(_upgrade, schema, url, to)


async def require_current(db: Database, schema: Schema) -> None:
    """Raise a ``SchemaError`` naming the migrate command unless ``db`` is at head (changes nothing)."""
    url = db.url.render_as_string(hide_password=True)
    with _quiet("alembic"):
        await db.read(partial(_require_current, schema=schema, url=url), snapshot=True)


def _upgrade(conn: Connection, schema: Schema, url: str, to: str) -> Migrated:
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        # SQLite's procedure for changing tables: foreign keys off (a batch migration rebuilds a
        # table others may refer to), checked before the commit, on again afterwards.
        _pragma(conn, "PRAGMA foreign_keys=OFF")
    try:
        with conn.begin():  # on SQLite BEGIN IMMEDIATE: the write lock, held until COMMIT
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            migrated = _upgrade_locked(conn, schema, url, to)
            if sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        return migrated
    finally:
        if sqlite:
            _pragma(conn, "PRAGMA foreign_keys=ON")


def _upgrade_locked(conn: Connection, schema: Schema, url: str, to: str) -> Migrated:
    before = MigrationContext.configure(conn).get_current_revision()
    adopted = None
    if before is None:
        adopted = _adoptable(conn, schema, url)
        if adopted is not None:
            command.stamp(schema.config(conn), adopted)
    elif before not in schema.revisions():
        raise _unknown(schema, url, before)
    command.upgrade(schema.config(conn), to)
    return Migrated(before, adopted, MigrationContext.configure(conn).get_current_revision() or "")


def _require_current(conn: Connection, *, schema: Schema, url: str) -> None:
    current = MigrationContext.configure(conn).get_current_revision()
    head = schema.head
    if current == head:
        return
    run = f"run `{schema.migrate_command(url)}`"
    if current is None:
        adopted = _adoptable(conn, schema, url)
        if adopted is None:
            raise SchemaBehind(f"{schema.describe(url)} has no schema yet, this version needs {head}: {run}")
        raise SchemaBehind(
            f"{schema.describe(url)} was made before migrations (its tables are revision {adopted}'s), "
            f"this version needs {head}: {run}"
        )
    if current not in schema.revisions():
        raise _unknown(schema, url, current)
    raise SchemaBehind(f"{schema.describe(url)} is at revision {current}, this version needs {head}: {run}")


def _unknown(schema: Schema, url: str, current: str) -> UnknownRevision:
    return UnknownRevision(
        f"{schema.describe(url)} is at revision {current}, which this version does not know (a newer "
        f"version migrated it); this version needs {schema.head}"
    )


def _adoptable(conn: Connection, schema: Schema, url: str) -> str | None:
    """The revision a database without migration history is at: None when it holds none of the
    schema's tables (empty); the newest revision whose tables and columns it has exactly; else
    ``OutdatedSchema`` naming how it differs from the nearest revision."""
    shapes = revision_shapes(schema)
    ours = {table for _, shape in shapes for table in shape}
    found = _shape(conn, ours)
    if not found:
        return None
    for revision, shape in reversed(shapes):
        if found == shape:
            return revision
    revision, shape = min(
        shapes, key=lambda item: sum(len(names) for _, names in _differences(found, item[1]))
    )
    described = "; ".join(f"{label}: {', '.join(names)}" for label, names in _differences(found, shape))
    raise OutdatedSchema(
        f"{schema.describe(url)} predates migrations and matches no revision of its schema "
        f"(nearest {revision}: {described}): it cannot be migrated; start from an empty database "
        "(make run: remove var/)"
    )


def _differences(found: Shape, wanted: Shape) -> list[tuple[str, list[str]]]:
    """How ``found`` differs from ``wanted``: (what, names) for each kind of difference there is."""
    common = [table for table in sorted(wanted) if table in found]
    parts = [
        ("missing columns", [f"{t}.{c}" for t in common for c in sorted(wanted[t] - found[t])]),
        ("missing tables", sorted(set(wanted) - set(found))),
        (
            "columns it should not have yet",
            [f"{t}.{c}" for t in common for c in sorted(found[t] - wanted[t])],
        ),
        ("tables it should not have yet", sorted(set(found) - set(wanted))),
    ]
    return [(label, names) for label, names in parts if names]


def revision_shapes(schema: Schema) -> list[tuple[str, Shape]]:
    """Each revision's tables and columns, oldest first: its migrations run one by one on an
    in-memory SQLite database (column names do not depend on the database)."""
    engine = create_engine("sqlite://")
    shapes: list[tuple[str, Shape]] = []
    try:
        with _quiet("alembic"), engine.begin() as conn:
            for revision in schema.revisions():
                command.upgrade(schema.config(conn, rehearsal=True), revision)
                shapes.append((revision, _shape(conn)))
    finally:
        engine.dispose()
    return shapes


def _shape(conn: Connection, tables: Collection[str] | None = None) -> Shape:
    inspector = inspect(conn)
    names = [
        name
        for name in inspector.get_table_names()
        if name != VERSION_TABLE and (tables is None or name in tables)
    ]
    return {name: frozenset(column["name"] for column in inspector.get_columns(name)) for name in names}


def _pragma(conn: Connection, statement: str) -> None:
    """Run a PRAGMA outside any transaction (SQLite ignores ``foreign_keys`` inside one)."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Only a library's warnings and errors for a moment."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
