"""Baseline: the recharge center's tables as the release before migrations created them (issue 12).

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

#: Autoincrementing 64-bit id on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "recharge_orders",
        sa.Column("order_no", sa.String(32), primary_key=True),
        sa.Column("merchant_id", sa.String(32), nullable=False),
        sa.Column("merchant_version", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("card_no", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(24), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("pay_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("bonus_fen", sa.BigInteger(), nullable=False),
        sa.Column("credit_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("rule_version", sa.BigInteger(), nullable=False),
        sa.Column("prepay_id", sa.String(64), nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("out_refund_no", sa.String(64), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=False),
        sa.Column("payer_openid", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("paid_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_recharge_orders_status_updated", "recharge_orders", ["status", "updated_at"])
    op.create_index("ix_recharge_orders_card_no", "recharge_orders", ["card_no"])
    op.create_index(
        "ux_recharge_orders_merchant_key", "recharge_orders", ["merchant_id", "idempotency_key"], unique=True
    )
    op.create_index("ix_recharge_orders_merchant_status", "recharge_orders", ["merchant_id", "status"])

    op.create_table(
        "merchants",
        sa.Column("merchant_id", sa.String(32), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "merchant_versions",
        sa.Column("merchant_id", sa.String(32), primary_key=True),
        sa.Column("version", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
    )

    op.create_table(
        "payments",
        sa.Column("transaction_id", sa.String(64), primary_key=True),
        sa.Column("order_no", sa.String(32), nullable=False),
        sa.Column("amount_total_fen", sa.BigInteger(), nullable=False),
        sa.Column("success_time", sa.String(40), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_payments_order_no", "payments", ["order_no"])

    op.create_table(
        "timeline_events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("order_no", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("from_status", sa.String(24), nullable=False),
        sa.Column("to_status", sa.String(24), nullable=False),
        sa.Column("method", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_timeline_order", "timeline_events", ["order_no", "id"])

    op.create_table(
        "outbox",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("order_no", sa.String(32), nullable=False),
        sa.Column("merchant_id", sa.String(32), nullable=False),
        sa.Column("topic", sa.String(24), nullable=False),
        sa.Column("event_id", sa.String(96), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    for table in (
        "outbox",
        "timeline_events",
        "payments",
        "merchant_versions",
        "merchants",
        "recharge_orders",
    ):
        op.drop_table(table)
