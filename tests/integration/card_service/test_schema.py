"""The schema: made by ``create_schema`` (the migrations), and a database that predates a column is
refused, naming what it lacks, instead of failing on its first write."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from card_service.adapters.unit_of_work import create_schema
from card_service.migrations import SCHEMA
from rc_common.db import Database
from rc_common.migrations import OutdatedSchema, require_current


async def test_a_database_made_before_cards_had_a_merchant_is_refused_by_migrate_and_at_start(
    tmp_path: Path,
) -> None:
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
        async with database.engine.begin() as conn:
            await conn.run_sync(old.create_all)
        for attempt in (create_schema(database), require_current(database, SCHEMA)):
            with pytest.raises(OutdatedSchema, match=r"missing columns: cards\.merchant_id.*remove var/"):
                await attempt
    finally:
        await database.dispose()


async def test_creating_the_schema_twice_is_harmless(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'card.db'}")
    try:
        await create_schema(database)
        await create_schema(database)
    finally:
        await database.dispose()
