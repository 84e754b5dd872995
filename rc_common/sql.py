"""Small portable SQL helpers for statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_or_ignore(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], conflict: Sequence[str]
) -> int:
    """``INSERT … ON CONFLICT (conflict) DO NOTHING`` for ``rows``; returns how many were inserted
    (SQLite ≥ 3.24 and PostgreSQL). One statement, so no SELECT-before-INSERT race."""
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    inserted = 0
    for row in rows:  # executemany would not report per-row counts on every driver
        inserted += conn.execute(statement, dict(row)).rowcount
    return inserted
