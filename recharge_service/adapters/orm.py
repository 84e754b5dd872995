"""Tables (SQLAlchemy Core, portable between SQLite and PostgreSQL).

Times are stored as naive UTC and read back as aware UTC (``UtcDateTime``), so comparisons work
the same on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


#: Autoincrementing 64-bit id on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

recharge_orders = Table(
    "recharge_orders",
    metadata,
    Column("order_no", String(32), primary_key=True),
    Column("merchant_id", String(32), nullable=False),
    # The merchant configuration the order was created with (merchant_versions).
    Column("merchant_version", BigInteger, nullable=False),
    Column("idempotency_key", String(64), nullable=False),
    Column("card_no", String(32), nullable=False),
    Column("channel", String(24), nullable=False),
    Column("status", String(24), nullable=False),
    Column("pay_amount_fen", BigInteger, nullable=False),
    Column("bonus_fen", BigInteger, nullable=False, default=0),
    Column("credit_amount_fen", BigInteger, nullable=False, default=0),
    Column("rule_version", BigInteger, nullable=False, default=0),
    Column("prepay_id", String(64), nullable=False, default=""),
    Column("transaction_id", String(64), nullable=False, default=""),
    Column("out_refund_no", String(64), nullable=False, default=""),
    Column("failure_reason", Text, nullable=False, default=""),
    Column("payer_openid", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # Last state change: the sentinel's measure of age.
    Column("updated_at", UtcDateTime, nullable=False),
    Column("paid_at", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("version", BigInteger, nullable=False, default=0),
    # Processing visits that ended undecided, and the last error seen.
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=False, default=""),
    # The sentinel's claim (issue 6): who works on the order, until when.
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
    # Fencing token (issue 13): +1 on every claim; work under a lease checks it before each state
    # change and each outgoing mutating call, so a replica that lost the order stops.
    Column("lease_token", BigInteger, nullable=False, default=0, server_default="0"),
    Index("ix_recharge_orders_status_updated", "status", "updated_at"),
    Index("ix_recharge_orders_card_no", "card_no"),
    Index("ix_recharge_orders_payer_openid", "payer_openid"),
    # Idempotency keys are the merchant's: unique per merchant.
    Index("ux_recharge_orders_merchant_key", "merchant_id", "idempotency_key", unique=True),
    Index("ix_recharge_orders_merchant_status", "merchant_id", "status"),
    # The reconciliation's "orders paid on the day" (issue 16).
    Index("ix_recharge_orders_merchant_paid", "merchant_id", "paid_at"),
    # FindOrders by WeChat's transaction id (issue 17).
    Index("ix_recharge_orders_transaction_id", "transaction_id"),
)

#: The current configuration of each merchant (``config`` is MerchantConfig as JSON).
merchants = Table(
    "merchants",
    metadata,
    Column("merchant_id", String(32), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("config", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

#: Every version a merchant's configuration had, immutable: orders point at one; the audit trail.
merchant_versions = Table(
    "merchant_versions",
    metadata,
    Column("merchant_id", String(32), primary_key=True),
    Column("version", BigInteger, primary_key=True),
    Column("config", Text, nullable=False),
    Column("operator", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)

payments = Table(
    "payments",
    metadata,
    Column("transaction_id", String(64), primary_key=True),
    Column("order_no", String(32), nullable=False, index=True),
    Column("amount_total_fen", BigInteger, nullable=False),
    Column("success_time", String(40), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

timeline_events = Table(
    "timeline_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_no", String(32), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("from_status", String(24), nullable=False, default=""),
    Column("to_status", String(24), nullable=False, default=""),
    Column("method", String(128), nullable=False, default=""),
    Column("outcome", String(64), nullable=False, default=""),
    Column("latency_ms", Integer, nullable=False, default=0),
    Column("error", Text, nullable=False, default=""),
    Column("actor", String(64), nullable=False, default="system"),
    # Which replica wrote the row (its --node-id; issue 13).
    Column("node", String(64), nullable=False, default="", server_default=""),
    Column("detail", Text, nullable=False, default=""),
    Index("ix_timeline_order", "order_no", "id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_no", String(32), nullable=False),
    # The order's merchant: dispatchers take turns between merchants (``OutboxRepository.claim``).
    Column("merchant_id", String(32), nullable=False),
    # customer_notice | business_callback
    Column("topic", String(24), nullable=False),
    Column("event_id", String(96), nullable=False, unique=True),
    Column("payload", Text, nullable=False),
    # pending | delivered | skipped | dead
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", Text, nullable=False, default=""),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_outbox_due", "status", "next_attempt_at"),
)

#: One reconciliation per business day (YYYY-MM-DD, +08:00) and merchant; a re-run replaces it.
reconciliation_runs = Table(
    "reconciliation_runs",
    metadata,
    Column("business_date", String(10), primary_key=True),
    Column("merchant_id", String(32), primary_key=True),
    # COMPLETED | FAILED
    Column("status", String(12), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    # Items per category, as JSON.
    Column("counts", Text, nullable=False),
    Column("differences", Integer, nullable=False),
    Column("pending", Integer, nullable=False),
    Column("bill_rows", Integer, nullable=False),
    Column("orders", Integer, nullable=False),
    Column("journal_entries", Integer, nullable=False),
    Column("actor", String(64), nullable=False),
)

#: What a run found: one row per order that differs or is pending.
reconciliation_items = Table(
    "reconciliation_items",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("business_date", String(10), nullable=False),
    Column("merchant_id", String(32), nullable=False),
    Column("order_no", String(128), nullable=False),
    Column("category", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("wechat", Text, nullable=False),
    Column("ours", Text, nullable=False),
    Column("card", Text, nullable=False),
    Column("wechat_fen", BigInteger, nullable=False),
    Column("ours_fen", BigInteger, nullable=False),
    Column("card_fen", BigInteger, nullable=False),
    Index("ix_reconciliation_items_run", "business_date", "merchant_id", "id"),
    Index("ix_reconciliation_items_order", "order_no"),
)

#: The one PENDING approval an (order, action) may have: a partial unique index both databases
#: build and infer an ``ON CONFLICT … WHERE`` from.
PENDING_ONLY = text("status = 'PENDING'")

#: Four eyes (issue 17): an operator's action waiting for a second person, and how it was decided.
approvals = Table(
    "approvals",
    metadata,
    Column("approval_id", String(32), primary_key=True),
    Column("order_no", String(32), nullable=False),
    Column("merchant_id", String(32), nullable=False),
    # The resolve action's name (REFUND).
    Column("action", String(24), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    # PENDING | APPROVED | REJECTED | EXPIRED
    Column("status", String(12), nullable=False),
    Column("requested_by", String(64), nullable=False),
    Column("request_reason", Text, nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("decided_by", String(64), nullable=False, default=""),
    Column("decision_reason", Text, nullable=False, default=""),
    Column("decided_at", UtcDateTime, nullable=True),
    Column("outcome", Text, nullable=False, default=""),
    Index(
        "ux_approvals_pending",
        "order_no",
        "action",
        unique=True,
        sqlite_where=PENDING_ONLY,
        postgresql_where=PENDING_ONLY,
    ),
    # ListApprovals (by status, newest first) and the pending count.
    Index("ix_approvals_status_requested", "status", "requested_at"),
)
