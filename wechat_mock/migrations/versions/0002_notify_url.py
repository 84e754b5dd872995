"""Issue 15: WeChat posts notifications to the ``notify_url`` the prepay (or refund) request
carried, so orders, refunds and notifications keep it; existing rows (gRPC world) get '' (the
notification then goes to ``--notify-target``).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

TABLES = ("payment_orders", "refunds", "notifications")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("notify_url", sa.String(256), nullable=False, server_default=""))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("notify_url")
