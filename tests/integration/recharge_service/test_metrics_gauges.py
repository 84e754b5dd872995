"""The database gauges of ``/metrics`` (``adapters/order_gauges.py``) on SQLite and PostgreSQL:
every status counted, the oldest unfinished order's age (final ones and MANUAL_REVIEW left out),
the review queue's, and the pending outbox rows — from orders written straight into the tables."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, insert

from rc_common.db import Database
from recharge_service.adapters.order_gauges import OrderGauges
from recharge_service.adapters.orm import outbox, recharge_orders
from recharge_service.bootstrap import create_schema
from recharge_service.domain.order import OrderStatus as S
from tests.integration.recharge_service.fakes import Clock
from tests.integration.recharge_service.test_fairness import order_row


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").createdb(f"recharge_{uuid.uuid4().hex[:12]}")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'gauges.db'}"
    db = Database(url)
    await create_schema(db)
    yield db
    await db.dispose()


def outbox_row(n: int, status: str, created: datetime) -> dict[str, object]:
    return {
        "order_no": f"R{n:06d}",
        "merchant_id": "shop-a",
        "topic": "customer_notice",
        "event_id": f"R{n:06d}.credited.notice",
        "payload": "{}",
        "status": status,
        "attempts": 0,
        "next_attempt_at": created,
        "created_at": created,
    }


def gauge(gauges: OrderGauges, name: str) -> float:
    value = gauges.registry.get_sample_value(name)
    assert value is not None, name
    return value


async def test_the_gauges_read_every_status_and_the_oldest_ages_in_one_query(database: Database) -> None:
    now = Clock().now
    hours = [now - timedelta(hours=h) for h in range(10)]
    orders = [
        order_row("shop-a", 1, S.CREDITED, hours[9]),  # final: the oldest, but finished
        order_row("shop-a", 2, S.MANUAL_REVIEW, hours[8]),  # in review: its own gauge
        order_row("shop-a", 3, S.MANUAL_REVIEW, hours[2]),
        order_row("shop-a", 4, S.CREDIT_UNKNOWN, hours[5]),  # the oldest unfinished
        order_row("shop-a", 5, S.AWAITING_PAYMENT, hours[1]),
        order_row("shop-a", 6, S.REFUNDING, hours[3]),
    ]
    orders[3]["updated_at"] = hours[1]  # changed since (a sentinel visit): its age is since creation
    pending = [outbox_row(1, "pending", hours[4]), outbox_row(2, "pending", hours[2])]
    done = [outbox_row(3, "delivered", hours[9]), outbox_row(4, "dead", hours[9])]

    def unit(conn: Connection) -> None:
        conn.execute(insert(recharge_orders), orders)
        conn.execute(insert(outbox), pending + done)

    await database.write(unit)
    gauges = OrderGauges(database, 60.0, lambda: now)
    await gauges.refresh()

    by_status = {s.name: gauges.registry.get_sample_value("rc_orders", {"status": s.name}) for s in S}
    assert by_status == {s.name: 0 for s in S} | {
        "CREDITED": 1,
        "MANUAL_REVIEW": 2,
        "CREDIT_UNKNOWN": 1,
        "AWAITING_PAYMENT": 1,
        "REFUNDING": 1,
    }
    assert gauge(gauges, "rc_oldest_unfinished_order_age_seconds") == pytest.approx(5 * 3600)
    assert gauge(gauges, "rc_oldest_manual_review_age_seconds") == pytest.approx(8 * 3600)
    assert gauge(gauges, "rc_outbox_backlog") == 2
    assert gauge(gauges, "rc_outbox_oldest_age_seconds") == pytest.approx(4 * 3600)


async def test_an_empty_database_reads_as_zeros(database: Database) -> None:
    gauges = OrderGauges(database, 60.0, Clock())
    await gauges.refresh()
    assert gauge(gauges, "rc_oldest_unfinished_order_age_seconds") == 0
    assert gauge(gauges, "rc_oldest_manual_review_age_seconds") == 0
    assert gauge(gauges, "rc_outbox_backlog") == 0
    assert gauge(gauges, "rc_outbox_oldest_age_seconds") == 0
    assert gauges.registry.get_sample_value("rc_orders", {"status": "CREATED"}) == 0
