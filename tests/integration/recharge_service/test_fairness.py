"""Merchants are served fairly: one merchant's backlog of 10,000 stuck orders (or of undelivered
follow-ups) does not push another merchant's few out of the first batch the sentinel (or the
outbox dispatcher) takes — on SQLite and on PostgreSQL. Also: an old database is refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, insert, text

from rc_common.db import Database
from rc_common.migrations import OutdatedSchema
from recharge_service.adapters.orm import metadata, outbox, recharge_orders
from recharge_service.adapters.unit_of_work import uow_factory
from recharge_service.bootstrap import create_schema
from recharge_service.domain.order import SENTINEL_STATES, OrderStatus
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.ports import RECHARGING, CardRecharge
from recharge_service.service_layer.sentinel import run_sentinel
from tests.integration.recharge_service.fakes import Clock, FakeCard, FakePayments, MemoryMerchants, merchant
from tests.integration.recharge_service.sentinel_support import policy

S = OrderStatus
BACKLOG = 10_000
BATCH = 500


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").createdb(f"recharge_{uuid.uuid4().hex[:12]}")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'fair.db'}"
    db = Database(url)
    await create_schema(db)
    yield db
    await db.dispose()


def order_row(merchant_id: str, n: int, status: OrderStatus, changed: datetime) -> dict[str, Any]:
    order_no = f"R{changed:%Y%m%d%H%M%S}{merchant_id[:4]}{n:06d}"
    return {
        "order_no": order_no,
        "merchant_id": merchant_id,
        "merchant_version": 1,
        "idempotency_key": order_no,
        "card_no": "8800000000000001",
        "channel": "POS",
        "status": status.name,
        "pay_amount_fen": 100_000,
        "bonus_fen": 2_000,
        "credit_amount_fen": 102_000,
        "rule_version": 1,
        "prepay_id": f"wx_prepay_{order_no}",
        "transaction_id": f"4200{order_no}",
        "out_refund_no": "",
        "failure_reason": "",
        "payer_openid": "o-payer",
        "created_at": changed,
        "updated_at": changed,
        "paid_at": changed,
        "expires_at": changed + timedelta(minutes=30),
        "version": 3,
        "attempts": 0,
        "last_error": "",
    }


async def stuck_orders(db: Database, merchant_id: str, count: int, changed: datetime) -> list[str]:
    """``count`` orders of ``merchant_id`` left CREDIT_UNKNOWN at ``changed`` (one insert)."""
    rows = [order_row(merchant_id, n, S.CREDIT_UNKNOWN, changed) for n in range(count)]

    def unit(conn: Connection) -> None:
        conn.execute(insert(recharge_orders), rows)

    await db.write(unit)
    return [row["order_no"] for row in rows]


async def test_a_claim_gives_every_merchant_its_turn_whatever_another_merchant_s_backlog(
    database: Database,
) -> None:
    now = Clock().now
    big = await stuck_orders(database, "big", BACKLOG, now - timedelta(hours=5))  # older, so first before
    small = await stuck_orders(database, "small", 3, now - timedelta(hours=2))
    other = await stuck_orders(database, "other", 600, now - timedelta(hours=3))
    async with uow_factory(database)() as uow:
        claimed = await uow.leases.claim_batch(
            "node-a", now, now + timedelta(minutes=1), statuses=sorted(SENTINEL_STATES), limit=BATCH
        )
    assert len(claimed) == BATCH
    assert set(small) <= set(claimed)  # all of the small merchant's orders in the first batch
    taken = {m: len(set(orders) & set(claimed)) for m, orders in (("big", big), ("other", other))}
    assert taken == {"big": 249, "other": 248}  # turns: 3 each, then big and other alternate
    # within a merchant the oldest first: big's first 249 orders by age
    assert sorted(set(big) & set(claimed)) == sorted(big)[:249]
    assert claimed[:3] == [min(big), min(other), min(small)]  # turn 1, then the oldest change first

    # the next claim (others hold the first batch's leases) goes on with the rest
    async with uow_factory(database)() as uow:
        more = await uow.leases.claim_batch(
            "node-b", now, now + timedelta(minutes=1), statuses=sorted(SENTINEL_STATES), limit=BATCH
        )
    assert not set(more) & set(claimed)
    assert {m: len(set(orders) & set(more)) for m, orders in (("big", big), ("other", other))} == {
        "big": 250,
        "other": 250,
    }


class CountingCard(FakeCard):
    """Notes the order in which the sentinel asks about orders."""

    def __init__(self) -> None:
        super().__init__(bonus_fen=2_000)
        self.asked: list[str] = []

    async def get_recharge(self, order_no: str, merchant_id: str):  # type: ignore[no-untyped-def]
        self.asked.append(order_no)
        return await super().get_recharge(order_no, merchant_id)


async def test_a_sentinel_run_credits_the_small_merchant_s_orders_in_its_first_batch(
    database: Database,
) -> None:
    clock, card = Clock(), CountingCard()
    directory = MemoryMerchants.of(merchant("big"), merchant("small"))
    deps = Deps(
        uow=uow_factory(database), card=card, payments=FakePayments(), merchants=directory, clock=clock
    )
    big = await stuck_orders(database, "big", 400, clock.now - timedelta(hours=5))
    small = await stuck_orders(database, "small", 4, clock.now - timedelta(hours=2))
    for order_no in big + small:
        card.records[order_no] = CardRecharge(order_no, RECHARGING, 2_000, 102_000, 1)
    try:
        report = await run_sentinel(deps, policy(batch=100, concurrency=8))
    finally:
        await deps.background.close(5.0)
    assert report.examined == 404 and report.credited == 404
    first_batch = card.asked[:100]
    assert set(small) <= set(first_batch)  # not behind big's 400 older orders
    async with deps.uow(readonly=True) as uow:
        for order_no in small:
            order = await uow.orders.get(order_no)
            assert order is not None and order.status is S.CREDITED


def outbox_rows(merchant_id: str, count: int, due: datetime) -> list[dict[str, Any]]:
    return [
        {
            "order_no": f"R-{merchant_id}-{n}",
            "merchant_id": merchant_id,
            "topic": "business_callback",
            "event_id": f"R-{merchant_id}-{n}.credited.callback",
            "payload": json.dumps({"status": "CREDITED"}),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": due,
            "last_error": "",
            "created_at": due,
        }
        for n in range(count)
    ]


async def test_the_outbox_gives_every_merchant_its_turn_whatever_another_merchant_s_backlog(
    database: Database,
) -> None:
    now = Clock().now
    rows = outbox_rows("big", BACKLOG, now - timedelta(hours=1)) + outbox_rows("small", 2, now)

    def unit(conn: Connection) -> None:
        conn.execute(insert(outbox), rows)

    await database.write(unit)
    async with uow_factory(database)() as uow:
        claimed = await uow.outbox.claim("d1", now, now + timedelta(minutes=1), 100)
    assert len(claimed) == 100
    assert {row.order_no for row in claimed} >= {"R-small-0", "R-small-1"}


async def test_a_database_of_the_single_merchant_version_is_refused_naming_what_it_lacks(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

        def drop(conn: Connection) -> None:
            conn.execute(text("ALTER TABLE outbox DROP COLUMN merchant_id"))

        await db.write(drop)
        with pytest.raises(OutdatedSchema, match=r"missing columns: outbox\.merchant_id.*remove var/"):
            await create_schema(db)
    finally:
        await db.dispose()
