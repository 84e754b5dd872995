"""The card system's tables (SQLAlchemy Core). Portable: SQLite embedded, PostgreSQL in production.

Unique (kind, business_key) on the journal makes "at most one principal credit per order number"
(and one spend / one reversal per request id) a database fact, not only a code path.

Merchants: every card belongs to one (card numbers stay globally unique, so the card number alone
is still the key); a pre-recharge records its card's merchant; rules are versioned per merchant,
keyed by (merchant_id, version).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: BIGINT on PostgreSQL; INTEGER on SQLite so the primary key is the auto-incrementing rowid.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)
#: 1 to 32 of [A-Za-z0-9_-] (checked by the commands).
MerchantId = sa.String(32)

cards = sa.Table(
    "cards",
    metadata,
    sa.Column("card_no", sa.String(32), primary_key=True),
    sa.Column("merchant_id", MerchantId, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("balance_fen", sa.BigInteger, nullable=False),
    sa.Column("holder_name", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.CheckConstraint("balance_fen >= 0", name="ck_cards_balance_not_negative"),
)

pre_recharges = sa.Table(
    "pre_recharges",
    metadata,
    sa.Column("order_no", sa.String(128), primary_key=True),
    # Empty for a tombstone, so no foreign key.
    sa.Column("card_no", sa.String(32), nullable=False),
    # The card's merchant; on a tombstone the merchant its void named, or ''.
    sa.Column("merchant_id", MerchantId, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("pay_amount_fen", sa.BigInteger, nullable=False),
    sa.Column("bonus_fen", sa.BigInteger, nullable=False),
    sa.Column("rule_version", sa.BigInteger, nullable=False),
    sa.Column("void_reason", sa.Text, nullable=False),
    sa.Column("tombstone", sa.Boolean, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Index("ix_pre_recharges_card_status", "card_no", "status"),
)

consumptions = sa.Table(
    "consumptions",
    metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("card_no", sa.String(32), sa.ForeignKey("cards.card_no"), nullable=False),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("merchant_id", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("balance_after_fen", sa.BigInteger, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

journal_entries = sa.Table(
    "journal_entries",
    metadata,
    sa.Column("entry_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("card_no", sa.String(32), sa.ForeignKey("cards.card_no"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("balance_after_fen", sa.BigInteger, nullable=False),
    sa.Column("business_key", sa.String(128), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("kind", "business_key", name="uq_journal_kind_business_key"),
    sa.Index("ix_journal_card_entry", "card_no", "entry_id"),
)

recharge_rules = sa.Table(
    "recharge_rules",
    metadata,
    sa.Column("merchant_id", MerchantId, primary_key=True),
    # Counted per merchant: 1, 2, ...
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("min_pay_fen", sa.BigInteger, nullable=False),
    sa.Column("max_pay_fen", sa.BigInteger, nullable=False),
    sa.Column("balance_cap_fen", sa.BigInteger, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

bonus_tiers = sa.Table(
    "bonus_tiers",
    metadata,
    sa.Column("merchant_id", MerchantId, primary_key=True),
    sa.Column("rule_version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("min_pay_fen", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("bonus_fen", sa.BigInteger, nullable=False),
    sa.ForeignKeyConstraint(
        ["merchant_id", "rule_version"], ["recharge_rules.merchant_id", "recharge_rules.version"],
        name="fk_bonus_tiers_rule",
    ),
)
