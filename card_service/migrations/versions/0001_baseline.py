"""Baseline: the card system's tables as the release before migrations created them (issue 12).

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

#: BIGINT on PostgreSQL; INTEGER on SQLite so the primary key is the auto-incrementing rowid.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cards",
        sa.Column("card_no", sa.String(32), primary_key=True),
        sa.Column("merchant_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("balance_fen", sa.BigInteger(), nullable=False),
        sa.Column("holder_name", sa.String(200), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("balance_fen >= 0", name="ck_cards_balance_not_negative"),
    )
    op.create_table(
        "pre_recharges",
        sa.Column("order_no", sa.String(128), primary_key=True),
        sa.Column("card_no", sa.String(32), nullable=False),
        sa.Column("merchant_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pay_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("bonus_fen", sa.BigInteger(), nullable=False),
        sa.Column("rule_version", sa.BigInteger(), nullable=False),
        sa.Column("void_reason", sa.Text(), nullable=False),
        sa.Column("tombstone", sa.Boolean(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_pre_recharges_card_status", "pre_recharges", ["card_no", "status"])
    op.create_table(
        "consumptions",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("card_no", sa.String(32), sa.ForeignKey("cards.card_no"), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("merchant_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("balance_after_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "journal_entries",
        sa.Column("entry_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("card_no", sa.String(32), sa.ForeignKey("cards.card_no"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_fen", sa.BigInteger(), nullable=False),
        sa.Column("business_key", sa.String(128), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.UniqueConstraint("kind", "business_key", name="uq_journal_kind_business_key"),
    )
    op.create_index("ix_journal_card_entry", "journal_entries", ["card_no", "entry_id"])
    op.create_table(
        "recharge_rules",
        sa.Column("merchant_id", sa.String(32), primary_key=True),
        sa.Column("version", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("min_pay_fen", sa.BigInteger(), nullable=False),
        sa.Column("max_pay_fen", sa.BigInteger(), nullable=False),
        sa.Column("balance_cap_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_table(
        "bonus_tiers",
        sa.Column("merchant_id", sa.String(32), primary_key=True),
        sa.Column("rule_version", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("min_pay_fen", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("bonus_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id", "rule_version"],
            ["recharge_rules.merchant_id", "recharge_rules.version"],
            name="fk_bonus_tiers_rule",
        ),
    )


def downgrade() -> None:
    for table in (
        "bonus_tiers",
        "recharge_rules",
        "journal_entries",
        "consumptions",
        "pre_recharges",
        "cards",
    ):
        op.drop_table(table)
