"""The schema: created by ``create_schema`` (no migrations), and a database that predates a column
is refused at start, naming what it lacks, instead of failing on its first write."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from card_service.adapters.unit_of_work import create_schema
from rc_common.db import Database


async def test_a_database_made_before_cards_had_a_merchant_is_refused_at_start(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    old = sa.MetaData()
    sa.Table(  # the cards table as it was before merchants
        "cards",
        old,
        sa.Column("card_no", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("balance_fen", sa.BigInteger, nullable=False),
        sa.Column("holder_name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    try:
        await database.create_all(old)
        with pytest.raises(RuntimeError, match=r"missing columns: cards\.merchant_id"):
            await create_schema(database)
    finally:
        await database.dispose()


async def test_creating_the_schema_twice_is_harmless(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'card.db'}")
    try:
        await create_schema(database)
        await create_schema(database)
    finally:
        await database.dispose()
