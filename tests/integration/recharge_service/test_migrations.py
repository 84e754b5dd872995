"""The recharge center's schema history: a database of the previous release, with orders in it, is
upgraded with its data intact (the new columns at their defaults), on SQLite and PostgreSQL; the
service refuses to start on a schema that is behind, naming the command that fixes it; a database
older than the first migration is refused, naming what it lacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, text

from rc_common.db import Database
from rc_common.migrations import (
    VERSION_TABLE,
    OutdatedSchema,
    SchemaBehind,
    migrate,
    require_current,
    upgrade,
)
from recharge_service.adapters.orm import metadata
from recharge_service.adapters.unit_of_work import uow_factory
from recharge_service.domain.approval import Approval, ApprovalStatus
from recharge_service.domain.order import OrderStatus
from recharge_service.domain.timeline import OPERATOR_ACTION, TimelineEntry
from recharge_service.migrations import SCHEMA
from recharge_service.service_layer.storage import StaleApproval
from scripts.stack import ROOT
from tests.postgres import PostgresServer
from wechat_mock.adapters.keys import PlatformKeys

#: The columns revision 0002 adds (the previous release had neither).
ADDED = {("recharge_orders", "lease_token"), ("timeline_events", "node")}
AT = datetime(2026, 11, 1, 8, 0)  # naive UTC, as the tables store times


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        return server.createdb(f"recharge_{uuid.uuid4().hex[:12]}")
    return f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"


def order_row(n: int, status: str) -> dict[str, Any]:
    return {
        "order_no": f"RC2026110100000{n}",
        "merchant_id": "teahouse",
        "merchant_version": 1,
        "idempotency_key": f"key-{n}",
        "card_no": "8800000000000001",
        "channel": "POS",
        "status": status,
        "pay_amount_fen": 10_000 * n,
        "bonus_fen": 500,
        "credit_amount_fen": 10_000 * n + 500,
        "rule_version": 1,
        "prepay_id": f"wx-prepay-{n}",
        "transaction_id": f"42000{n}" if status != "AWAITING_PAYMENT" else "",
        "out_refund_no": "",
        "failure_reason": "",
        "payer_openid": "o-payer",
        "created_at": AT,
        "updated_at": AT + timedelta(minutes=n),
        "paid_at": AT + timedelta(minutes=1) if status != "AWAITING_PAYMENT" else None,
        "expires_at": AT + timedelta(hours=2),
        "version": n,
        "attempts": 0,
        "last_error": "",
        "lease_owner": None,
        "lease_until": None,
    }


def timeline_row(order_no: str, to_status: str, minute: int) -> dict[str, Any]:
    return {
        "order_no": order_no,
        "at": AT + timedelta(minutes=minute),
        "kind": "transition",
        "from_status": "",
        "to_status": to_status,
        "method": "",
        "outcome": "",
        "latency_ms": 0,
        "error": "",
        "actor": "system",
        "detail": f"minute {minute}",
    }


ORDERS = [order_row(1, "CREDITED"), order_row(2, "AWAITING_PAYMENT"), order_row(3, "CREDIT_UNKNOWN")]
TIMELINE = [
    timeline_row(order["order_no"], status, minute)
    for order in ORDERS
    for minute, status in enumerate(("CREATED", order["status"]))
]


def fill(conn: Connection) -> None:
    """Orders and their timelines as the previous release wrote them (no lease token, no node)."""
    tables = {
        name: sa.Table(name, sa.MetaData(), autoload_with=conn)
        for name in ("recharge_orders", "timeline_events")
    }
    assert {(t, c.name) for t, table in tables.items() for c in table.columns} & ADDED == set()
    conn.execute(tables["recharge_orders"].insert(), ORDERS)
    conn.execute(tables["timeline_events"].insert(), TIMELINE)


def rows(conn: Connection, name: str, key: str) -> list[dict[str, Any]]:
    """Every row of the table as the database has it now (its columns reflected, not the code's)."""
    table = sa.Table(name, sa.MetaData(), autoload_with=conn)
    return [dict(row) for row in conn.execute(sa.select(table).order_by(table.c[key])).mappings()]


async def write(db: Database, unit: Any) -> Any:
    async with db.engine.begin() as conn:
        return await conn.run_sync(unit)


def previous_release_schema(conn: Connection) -> None:
    """What the previous release's ``create_all`` made: today's tables without 0002's columns,
    0003's index, 0004's tables and index and 0005's table and index."""
    metadata.create_all(conn)
    conn.execute(text("DROP INDEX ix_recharge_orders_payer_openid"))
    conn.execute(text("DROP INDEX ix_recharge_orders_merchant_paid"))
    conn.execute(text("DROP INDEX ix_recharge_orders_transaction_id"))
    conn.execute(text("DROP TABLE reconciliation_items"))
    conn.execute(text("DROP TABLE reconciliation_runs"))
    conn.execute(text("DROP TABLE approvals"))
    for table, column in sorted(ADDED):
        conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))


async def assert_upgraded_with_data_intact(db: Database) -> None:
    orders = await db.read(lambda conn: rows(conn, "recharge_orders", "order_no"))
    timeline = await db.read(lambda conn: rows(conn, "timeline_events", "id"))
    assert [{k: v for k, v in row.items() if k != "lease_token"} for row in orders] == ORDERS
    assert [row["lease_token"] for row in orders] == [0, 0, 0]
    assert [{k: v for k, v in row.items() if k not in ("id", "node")} for row in timeline] == TIMELINE
    assert {row["node"] for row in timeline} == {""}
    # and the code reads them
    async with uow_factory(db)(readonly=True) as uow:
        order = await uow.orders.get(ORDERS[2]["order_no"])
        history = await uow.timeline.for_order(ORDERS[2]["order_no"])
    assert order is not None and order.status is OrderStatus.CREDIT_UNKNOWN
    assert order.credit_amount_fen == 30_500
    assert [entry.to_status for entry in history] == [OrderStatus.CREATED, OrderStatus.CREDIT_UNKNOWN]


async def test_a_database_at_revision_0001_with_orders_is_upgraded_with_its_data_intact(url: str) -> None:
    db = Database(url)
    try:
        await upgrade(db, SCHEMA, to="0001")
        await write(db, fill)

        migrated = await migrate(url, SCHEMA)

        assert (migrated.before, migrated.adopted, migrated.after) == ("0001", None, SCHEMA.head)
        await require_current(db, SCHEMA)
        await assert_upgraded_with_data_intact(db)
    finally:
        await db.dispose()


async def test_a_database_of_the_release_before_migrations_is_adopted_and_upgraded_with_its_data_intact(
    url: str,
) -> None:
    db = Database(url)
    try:
        await write(db, previous_release_schema)
        await write(db, fill)
        behind = rf"made before migrations .*revision 0001's.*needs {SCHEMA.head}"
        with pytest.raises(SchemaBehind, match=behind):
            await require_current(db, SCHEMA)

        migrated = await migrate(url, SCHEMA)

        assert (migrated.before, migrated.adopted, migrated.after) == (None, "0001", SCHEMA.head)
        await require_current(db, SCHEMA)
        await assert_upgraded_with_data_intact(db)
    finally:
        await db.dispose()


async def test_a_database_older_than_the_first_migration_is_refused_naming_what_it_lacks(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'single-merchant.db'}"
    old = sa.MetaData()
    sa.Table(  # recharge_orders before merchants (issue 11), in part
        "recharge_orders",
        old,
        sa.Column("order_no", sa.String(32), primary_key=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("pay_amount_fen", sa.BigInteger, nullable=False),
    )
    db = Database(url)
    try:
        await write(db, old.create_all)
        for attempt in (migrate, lambda url, schema: require_current(db, schema)):
            with pytest.raises(OutdatedSchema) as refused:
                await attempt(url, SCHEMA)
            message = str(refused.value)
            assert re.search(r"nearest 0001: missing columns: [^;]*recharge_orders\.merchant_id", message)
            assert (
                "missing tables: merchant_versions, merchants, outbox, payments, timeline_events" in message
            )
            assert "remove var/" in message
        tables = await db.read(lambda conn: sa.inspect(conn).get_table_names())
        assert tables == ["recharge_orders"]  # nothing was changed, nor stamped
    finally:
        await db.dispose()


def start_center(url: str, keys_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "recharge_service", "--listen", "127.0.0.1:0", "--db", url,
            "--wechat-keys-dir", str(keys_dir), "--log-format", "json",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def test_the_center_refuses_to_start_on_a_schema_behind_head_naming_the_migrate_command(
    tmp_path: Path, platform_keys: tuple[Path, PlatformKeys]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'behind.db'}"
    db = Database(url)
    try:
        await upgrade(db, SCHEMA, to="0001")
    finally:
        await db.dispose()

    refused = start_center(url, platform_keys[0])

    assert refused.returncode == 1, refused.stderr
    lines = [json.loads(line) for line in refused.stderr.splitlines() if line.startswith("{")]
    errors = [line["error"] for line in lines if line["event"] == "schema_refused"]
    assert errors == [
        f"The recharge center's database {url} is at revision 0001, this version needs {SCHEMA.head}: "
        f"run `python -m recharge_service migrate --db {url}`"
    ]
    assert not any(line["event"] == "server_started" for line in lines)
    db = Database(url)
    try:
        versions = await db.read(lambda conn: conn.execute(text(f"SELECT * FROM {VERSION_TABLE}")).all())
    finally:
        await db.dispose()
    assert [tuple(row) for row in versions] == [("0001",)]  # starting changed nothing


async def test_revision_0005_keeps_one_pending_approval_per_order_and_finds_orders_by_transaction(
    url: str,
) -> None:
    """0004 -> 0005 on a database with orders: the approvals table's partial unique index makes a
    second PENDING approval of an order a no-op (``INSERT … ON CONFLICT … WHERE``), a decided one
    makes room for a new one; FindOrders matches a transaction id through the new index."""
    db = Database(url)
    try:
        await upgrade(db, SCHEMA, to="0004")

        def orders_at_0004(conn: Connection) -> None:
            table = sa.Table("recharge_orders", sa.MetaData(), autoload_with=conn)
            conn.execute(table.insert(), [{**row, "lease_token": 0} for row in ORDERS])

        await write(db, orders_at_0004)
        migrated = await migrate(url, SCHEMA)
        assert (migrated.before, migrated.after) == ("0004", SCHEMA.head)

        def indexes(conn: Connection) -> dict[str, bool]:
            inspector = sa.inspect(conn)
            found = [*inspector.get_indexes("recharge_orders"), *inspector.get_indexes("approvals")]
            return {index["name"]: bool(index["unique"]) for index in found if index["name"]}

        names = await db.read(indexes)
        assert names["ix_recharge_orders_transaction_id"] is False
        assert names["ux_approvals_pending"] is True

        uow = uow_factory(db)
        order_no = ORDERS[2]["order_no"]
        at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

        def asked(approval_id: str, by: str) -> tuple[Approval, TimelineEntry]:
            approval = Approval(approval_id, order_no, "teahouse", "REFUND", 30_000, by, "customer asked", at)
            note = TimelineEntry(order_no, at, OPERATOR_ACTION, method="REFUND", outcome="approval_requested",
                                 actor=by, detail=approval_id)  # fmt: skip
            return approval, note

        async def request(approval_id: str, by: str) -> Approval | None:
            async with uow() as unit:
                unit.approvals.add_if_absent(*asked(approval_id, by))
                await unit.commit()
            async with uow(readonly=True) as unit:
                return await unit.approvals.pending_for(order_no, "REFUND")

        first = await request("A1", "bob")
        again = await request("A2", "carol")  # a second request while A1 is pending: nothing new
        assert first is not None and again is not None
        assert (first.approval_id, again.approval_id, again.requested_by) == ("A1", "A1", "bob")

        first.decide(False, "dave", "not this one", at)
        async with uow() as unit:
            unit.approvals.save_decision(first)
            await unit.commit()
        with pytest.raises(StaleApproval):  # decided already: a second decision writes nothing
            async with uow() as unit:
                unit.approvals.save_decision(first)
                await unit.commit()
        after = await request("A3", "carol")  # the decided one makes room for a new request
        assert after is not None and after.approval_id == "A3"

        async with uow(readonly=True) as unit:
            stored = await unit.approvals.get("A1")
            requested = [e for e in await unit.timeline.for_order(order_no) if e.kind == OPERATOR_ACTION]
            by_transaction = await unit.orders.find(ORDERS[0]["transaction_id"])
        assert stored is not None and (stored.status, stored.decided_by) == (ApprovalStatus.REJECTED, "dave")
        assert [e.detail for e in requested] == ["A1", "A3"]  # one row per approval made, none for A2
        assert [o.order_no for o in by_transaction] == [ORDERS[0]["order_no"]]
        async with uow(readonly=True) as unit:  # ListApprovals' page and the pending count
            first_page = await unit.approvals.page(
                statuses=[ApprovalStatus.PENDING, ApprovalStatus.REJECTED], page_size=1
            )
            second_page = await unit.approvals.page(
                statuses=[ApprovalStatus.PENDING, ApprovalStatus.REJECTED],
                page_size=1,
                page_token=first_page.next_page_token,
            )
            pending = await unit.approvals.count(ApprovalStatus.PENDING)
        # same requested_at: newest first falls back to the approval id, descending
        assert [a.approval_id for a in [*first_page.approvals, *second_page.approvals]] == ["A3", "A1"]
        assert second_page.next_page_token == "" and pending == 1
    finally:
        await db.dispose()
