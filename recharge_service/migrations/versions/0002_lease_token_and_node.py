"""Issue 13: orders get a lease token, timeline rows the replica that wrote them.

``recharge_orders.lease_token`` is the lease's fencing token, ``timeline_events.node`` the writing
replica's id; existing rows get 0 and ''.

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


def upgrade() -> None:
    op.add_column(
        "recharge_orders", sa.Column("lease_token", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("timeline_events", sa.Column("node", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("timeline_events") as batch:
        batch.drop_column("node")
    with op.batch_alter_table("recharge_orders") as batch:
        batch.drop_column("lease_token")
