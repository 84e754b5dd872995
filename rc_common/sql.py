"""Small portable SQL helpers for statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Insert, Table, TextClause
from sqlalchemy.dialects import postgresql, sqlite

_IGNORING: dict[tuple[str, str, tuple[str, ...]], Insert] = {}


def _ignoring(
    dialect: str, table: Table, conflict: Sequence[str], where: ColumnElement[bool] | TextClause | None = None
) -> Insert:
    key = (dialect, table.name, tuple(conflict))
    statement = _IGNORING.get(key) if where is None else None
    if statement is None:
        module = postgresql if dialect == "postgresql" else sqlite
        statement = module.insert(table).on_conflict_do_nothing(
            index_elements=list(conflict), index_where=where
        )
        if where is None:
            _IGNORING[key] = statement
    return statement


def insert_or_ignore(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    conflict: Sequence[str],
    *,
    where: ColumnElement[bool] | TextClause | None = None,
) -> int:
    """``INSERT … ON CONFLICT (conflict) DO NOTHING`` for ``rows`` in one statement (SQLite ≥ 3.24
    and PostgreSQL), so no SELECT-before-INSERT race; returns how many rows were inserted (as the
    driver reports it for several rows). ``where``: the conflict is on a partial unique index
    (``ON CONFLICT (conflict) WHERE … DO NOTHING``; both databases infer the index from it)."""
    if not rows:
        return 0
    statement = _ignoring(conn.dialect.name, table, conflict, where)
    result = conn.execute(statement, [dict(row) for row in rows] if len(rows) > 1 else dict(rows[0]))
    return max(0, result.rowcount)
