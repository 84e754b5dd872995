"""Issue 14: an index on the payer, for the per-payer cap on unpaid orders.

Each create counts the open orders on its card or of its payer (``count_open_for``); with
``ix_recharge_orders_card_no`` and this one the ``card_no = … OR payer_openid = …`` test reads only
those orders, not every open order of the merchant.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_recharge_orders_payer_openid", "recharge_orders", ["payer_openid"])


def downgrade() -> None:
    op.drop_index("ix_recharge_orders_payer_openid", table_name="recharge_orders")
