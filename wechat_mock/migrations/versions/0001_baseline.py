"""Baseline: the simulator's tables as the release before migrations created them (issue 12).

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


def upgrade() -> None:
    op.create_table(
        "payment_orders",
        sa.Column("out_trade_no", sa.String(32), primary_key=True),
        sa.Column("prepay_id", sa.String(64), nullable=False, unique=True),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("amount_total_fen", sa.BigInteger(), nullable=False),
        sa.Column("payer_openid", sa.String(128), nullable=False),
        sa.Column("time_expire", sa.DateTime(), nullable=True),
        sa.Column("attach", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("trade_state", sa.String(16), nullable=False),
        sa.Column("transaction_id", sa.String(32), nullable=True, unique=True),
        sa.Column("success_time", sa.DateTime(), nullable=True),
        sa.Column("paid_openid", sa.String(128), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("merchant_mode", sa.String(8), nullable=False),
        sa.Column("mchid", sa.String(32), nullable=False),
        sa.Column("sp_mchid", sa.String(32), nullable=False),
        sa.Column("sub_mchid", sa.String(32), nullable=False),
        sa.Column("appid", sa.String(32), nullable=False),
    )
    op.create_index("ix_payment_orders_success_time", "payment_orders", ["success_time"])

    op.create_table(
        "refunds",
        sa.Column("out_refund_no", sa.String(64), primary_key=True),
        sa.Column("refund_id", sa.String(32), nullable=False, unique=True),
        sa.Column(
            "out_trade_no", sa.String(32), sa.ForeignKey("payment_orders.out_trade_no"), nullable=False
        ),
        sa.Column("transaction_id", sa.String(32), nullable=False),
        sa.Column("refund_fen", sa.BigInteger(), nullable=False),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("success_time", sa.DateTime(), nullable=True),
        sa.Column("settled_at", sa.DateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("merchant_mode", sa.String(8), nullable=False),
        sa.Column("mchid", sa.String(32), nullable=False),
        sa.Column("sp_mchid", sa.String(32), nullable=False),
        sa.Column("sub_mchid", sa.String(32), nullable=False),
    )
    for column in ("out_trade_no", "created_at", "due_at", "status"):
        op.create_index(f"ix_refunds_{column}", "refunds", [column])

    op.create_table(
        "notifications",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("out_trade_no", sa.String(32), nullable=False),
        sa.Column("out_refund_no", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("signer", sa.String(32), nullable=False),
    )
    for column in ("out_trade_no", "next_attempt_at", "status"):
        op.create_index(f"ix_notifications_{column}", "notifications", [column])

    op.create_table(
        "template_messages",
        sa.Column("msgid", sa.String(24), primary_key=True),
        sa.Column("openid", sa.String(128), nullable=False),
        sa.Column("template_id", sa.String(128), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(256), nullable=True, unique=True),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("send_count", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_template_messages_openid", "template_messages", ["openid"])


def downgrade() -> None:
    for table in ("template_messages", "notifications", "refunds", "payment_orders"):
        op.drop_table(table)
