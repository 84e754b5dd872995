"""Issue 16: the daily three-way reconciliation's runs and items, and an index on the paid time.

``reconciliation_runs`` holds one run per (business day, merchant), replaced by a re-run;
``reconciliation_items`` what each run found. ``ix_recharge_orders_merchant_paid`` lets a run read
the orders paid on its day without scanning the merchant's orders.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

#: As in 0001: a revision is frozen, so it names its types itself rather than importing the ORM's.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UtcDateTime = sa.DateTime()


def upgrade() -> None:
    op.create_index("ix_recharge_orders_merchant_paid", "recharge_orders", ["merchant_id", "paid_at"])
    op.create_table(
        "reconciliation_runs",
        sa.Column("business_date", sa.String(10), primary_key=True),
        sa.Column("merchant_id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime, nullable=False),
        sa.Column("counts", sa.Text, nullable=False),
        sa.Column("differences", sa.Integer, nullable=False),
        sa.Column("pending", sa.Integer, nullable=False),
        sa.Column("bill_rows", sa.Integer, nullable=False),
        sa.Column("orders", sa.Integer, nullable=False),
        sa.Column("journal_entries", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
    )
    op.create_table(
        "reconciliation_items",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("business_date", sa.String(10), nullable=False),
        sa.Column("merchant_id", sa.String(32), nullable=False),
        sa.Column("order_no", sa.String(128), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("wechat", sa.Text, nullable=False),
        sa.Column("ours", sa.Text, nullable=False),
        sa.Column("card", sa.Text, nullable=False),
        sa.Column("wechat_fen", sa.BigInteger, nullable=False),
        sa.Column("ours_fen", sa.BigInteger, nullable=False),
        sa.Column("card_fen", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_reconciliation_items_run", "reconciliation_items", ["business_date", "merchant_id", "id"]
    )
    op.create_index("ix_reconciliation_items_order", "reconciliation_items", ["order_no"])


def downgrade() -> None:
    op.drop_index("ix_reconciliation_items_order", table_name="reconciliation_items")
    op.drop_index("ix_reconciliation_items_run", table_name="reconciliation_items")
    op.drop_table("reconciliation_items")
    op.drop_table("reconciliation_runs")
    op.drop_index("ix_recharge_orders_merchant_paid", table_name="recharge_orders")
