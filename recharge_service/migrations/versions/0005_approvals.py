"""Issue 17: four eyes on refunds (``approvals``), and FindOrders by WeChat's transaction id.

``approvals`` holds each operator action waiting for (or decided by) a second person. The partial
unique index ``ux_approvals_pending`` allows one PENDING approval per (order, action): a repeated
request is ``INSERT … ON CONFLICT (order_no, action) WHERE status = 'PENDING' DO NOTHING`` on both
SQLite and PostgreSQL. ``ix_recharge_orders_transaction_id`` lets FindOrders match a transaction id
without scanning the orders.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

#: As in 0001: a revision is frozen, so it names its types itself rather than importing the ORM's.
UtcDateTime = sa.DateTime()
PENDING_ONLY = sa.text("status = 'PENDING'")


def upgrade() -> None:
    op.create_index("ix_recharge_orders_transaction_id", "recharge_orders", ["transaction_id"])
    op.create_table(
        "approvals",
        sa.Column("approval_id", sa.String(32), primary_key=True),
        sa.Column("order_no", sa.String(32), nullable=False),
        sa.Column("merchant_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("request_reason", sa.Text, nullable=False),
        sa.Column("requested_at", UtcDateTime, nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("decision_reason", sa.Text, nullable=False),
        sa.Column("decided_at", UtcDateTime, nullable=True),
        sa.Column("outcome", sa.Text, nullable=False),
    )
    op.create_index(
        "ux_approvals_pending",
        "approvals",
        ["order_no", "action"],
        unique=True,
        sqlite_where=PENDING_ONLY,
        postgresql_where=PENDING_ONLY,
    )
    op.create_index("ix_approvals_status_requested", "approvals", ["status", "requested_at"])


def downgrade() -> None:
    op.drop_index("ix_approvals_status_requested", table_name="approvals")
    op.drop_index("ux_approvals_pending", table_name="approvals")
    op.drop_table("approvals")
    op.drop_index("ix_recharge_orders_transaction_id", table_name="recharge_orders")
