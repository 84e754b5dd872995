"""The simulator's tables (SQLAlchemy Core). Times are stored as naive UTC ``DateTime``s, which
SQLite and PostgreSQL both order and compare correctly; see :func:`to_db` / :func:`from_db`."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

payment_orders = Table(
    "payment_orders",
    metadata,
    Column("out_trade_no", String(32), primary_key=True),
    Column("prepay_id", String(64), nullable=False, unique=True),
    Column("description", String(256), nullable=False),
    Column("amount_total_fen", BigInteger, nullable=False),
    Column("payer_openid", String(128), nullable=False),
    Column("time_expire", DateTime, nullable=True),
    Column("attach", String(256), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("trade_state", String(16), nullable=False),
    Column("transaction_id", String(32), nullable=True, unique=True),
    Column("success_time", DateTime, nullable=True, index=True),
    Column("paid_openid", String(128), nullable=False),
    Column("closed_at", DateTime, nullable=True),
    Column("refunded_fen", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    # Whose trade: "direct" (mchid) or "partner" (sp_mchid + sub_mchid); the others are ''.
    Column("merchant_mode", String(8), nullable=False),
    Column("mchid", String(32), nullable=False),
    Column("sp_mchid", String(32), nullable=False),
    Column("sub_mchid", String(32), nullable=False),
    Column("appid", String(32), nullable=False),
    # Where WeChat posts its notifications (the prepay's notify_url); '' = --notify-target (gRPC).
    Column("notify_url", String(256), nullable=False, server_default=""),
)

refunds = Table(
    "refunds",
    metadata,
    Column("out_refund_no", String(64), primary_key=True),
    Column("refund_id", String(32), nullable=False, unique=True),
    Column("out_trade_no", String(32), ForeignKey("payment_orders.out_trade_no"), nullable=False, index=True),
    Column("transaction_id", String(32), nullable=False),
    Column("refund_fen", BigInteger, nullable=False),
    Column("total_fen", BigInteger, nullable=False),
    Column("reason", String(256), nullable=False),
    Column("created_at", DateTime, nullable=False, index=True),
    Column("due_at", DateTime, nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("success_time", DateTime, nullable=True),
    Column("settled_at", DateTime, nullable=True),
    Column("version", Integer, nullable=False),
    # The refunded trade's merchant, as in payment_orders.
    Column("merchant_mode", String(8), nullable=False),
    Column("mchid", String(32), nullable=False),
    Column("sp_mchid", String(32), nullable=False),
    Column("sub_mchid", String(32), nullable=False),
    # The refund request's notify_url ('' = the trade's).
    Column("notify_url", String(256), nullable=False, server_default=""),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("event_type", String(32), nullable=False),
    Column("out_trade_no", String(32), nullable=False, index=True),
    Column("out_refund_no", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False, index=True),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False),
    Column("last_error", String(500), nullable=False),
    Column("delivered_at", DateTime, nullable=True),
    Column("version", Integer, nullable=False),
    # Whose keys sign it: '' = the service provider's, else the direct merchant's mchid.
    Column("signer", String(32), nullable=False),
    # Where it is posted: an https:// (or loopback http://) URL; '' = --notify-target (gRPC).
    Column("notify_url", String(256), nullable=False, server_default=""),
)

template_messages = Table(
    "template_messages",
    metadata,
    Column("msgid", String(24), primary_key=True),
    Column("openid", String(128), nullable=False, index=True),
    Column("template_id", String(128), nullable=False),
    Column("data", Text, nullable=False),
    # NULL when the sender gave no key (every send is then a new message).
    Column("idempotency_key", String(256), nullable=True, unique=True),
    Column("sent_at", DateTime, nullable=False),
    Column("send_count", Integer, nullable=False),
    Column("version", Integer, nullable=False),
)


def to_db(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None)


def from_db(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC)


def from_db_required(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)
