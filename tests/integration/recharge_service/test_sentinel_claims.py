"""Two recharge centers sharing one database never act twice on one order.

Two ``Deps`` with separate ``Database`` objects on one SQLite file (two connections, as two
processes would have) or on one PostgreSQL database, both running the sentinel over the same
backlog at the same time, with fakes that record every remote call per order."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from rc_common.db import Database
from recharge_service.adapters.orm import metadata
from recharge_service.adapters.unit_of_work import uow_factory
from recharge_service.bootstrap import create_schema
from recharge_service.domain.order import SENTINEL_STATES, OrderStatus
from recharge_service.domain.timeline import NOTIFICATION, TRANSITION
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.payment import record_payment
from recharge_service.service_layer.ports import VOIDED, CardRecharge
from recharge_service.service_layer.sentinel import SentinelReport, run_sentinel
from tests.integration.recharge_service.conftest import MCHID, new_order, reload
from tests.integration.recharge_service.fakes import Clock, FakeCard, FakePayments, MemoryMerchants
from tests.integration.recharge_service.sentinel_support import (
    HOLD,
    credit_unknown_order,
    payment_of,
    policy,
    timeline,
)

S = OrderStatus
EACH = 12  # orders of each kind


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def two_databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Database, Database]]:
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").createdb(f"recharge_{uuid.uuid4().hex[:12]}")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first, second = Database(url), Database(url)
    if not first.is_sqlite:
        async with first.engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
    await create_schema(first)
    yield first, second
    await first.dispose()
    await second.dispose()


class SlowCard(FakeCard):
    """Yields to the other sentinel inside every call, so their visits interleave."""

    async def get_recharge(self, order_no: str, merchant_id: str):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.002)
        return await super().get_recharge(order_no, merchant_id)

    async def void_recharge(self, order_no: str, reason: str, merchant_id: str):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.002)
        return await super().void_recharge(order_no, reason, merchant_id)


def centers(
    databases: tuple[Database, Database], card: FakeCard, payments: FakePayments, clock: Clock
) -> tuple[Deps, Deps]:
    """Two recharge centers, one per database object, sharing the fakes and the merchants."""
    merchants = MemoryMerchants.of()
    first, second = (
        Deps(
            uow=uow_factory(db),
            card=card,
            payments=payments,
            merchants=merchants,
            sp_mchid=MCHID,
            clock=clock,
        )
        for db in databases
    )
    return first, second


async def backlog(deps: Deps, card: FakeCard, clock: Clock) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {"credit": [], "refund": [], "close": []}
    for _ in range(EACH):
        kinds["credit"].append((await credit_unknown_order(deps, card)).order_no)
        refund = await credit_unknown_order(deps, card)
        card.records[refund.order_no] = CardRecharge(refund.order_no, VOIDED)  # e.g. the card was closed
        kinds["refund"].append(refund.order_no)
        kinds["close"].append((await new_order(deps)).order_no)  # never paid
        clock.advance(timedelta(seconds=1))
    return kinds


async def test_two_sentinels_on_one_database_visit_each_order_once_and_never_repeat_a_remote_step(
    two_databases: tuple[Database, Database],
) -> None:
    card, payments, clock = SlowCard(bonus_fen=2_000), FakePayments(), Clock()
    a, b = centers(two_databases, card, payments, clock)
    kinds = await backlog(a, card, clock)
    before = Counter(card.calls)
    clock.advance(HOLD + timedelta(seconds=1))
    reports: dict[str, list[SentinelReport]] = {"node-a": [], "node-b": []}
    while True:
        ra, rb = await asyncio.gather(
            run_sentinel(a, policy(owner="node-a", batch=5, concurrency=3)),
            run_sentinel(b, policy(owner="node-b", batch=5, concurrency=3)),
        )
        reports["node-a"].append(ra)
        reports["node-b"].append(rb)
        if ra.examined == rb.examined == 0:
            break

    examined = {node: sum(r.examined for r in runs) for node, runs in reports.items()}
    assert examined["node-a"] > 0 and examined["node-b"] > 0
    assert sum(examined.values()) == 3 * EACH
    for order_no in [o for orders in kinds.values() for o in orders]:
        visits = await timeline(a, order_no, "sentinel_visit")
        assert len(visits) == 1, order_no
        assert (await reload(a, order_no)).status not in SENTINEL_STATES - {S.REFUNDING}
    sentinel_calls = Counter(card.calls) - before
    for order_no in kinds["credit"]:
        assert sentinel_calls[("ConfirmRecharge", order_no)] == 1
        assert (await reload(b, order_no)).status is S.CREDITED
    for order_no in kinds["refund"] + kinds["close"]:
        assert sentinel_calls[("VoidRecharge", order_no)] == 1
    refunds = Counter(c["out_trade_no"] for c in payments.of("CreateRefund"))
    assert refunds == Counter({order_no: 1 for order_no in kinds["refund"]})
    closes = Counter(c["out_trade_no"] for c in payments.of("CloseOrder"))
    assert closes == Counter({order_no: 1 for order_no in kinds["close"]})


async def test_concurrent_claims_are_disjoint_and_cover_the_backlog(
    two_databases: tuple[Database, Database],
) -> None:
    """On PostgreSQL the second claimer skips the rows the first holds locked (it does not wait);
    on SQLite the claims serialize. Either way no order is leased twice."""
    card, payments, clock = FakeCard(bonus_fen=2_000), FakePayments(), Clock()
    a, b = centers(two_databases, card, payments, clock)
    wanted = {(await credit_unknown_order(a, card)).order_no for _ in range(10)}
    now = clock() + HOLD * 2
    claim = {"statuses": sorted(SENTINEL_STATES), "changed_before": now - HOLD, "limit": 6}
    if two_databases[0].is_sqlite:
        async with a.uow() as first:
            got_a = await first.leases.claim_batch("node-a", now, now + HOLD, **claim)  # type: ignore[arg-type]
            await first.commit()
        async with b.uow() as second:
            got_b = await second.leases.claim_batch("node-b", now, now + HOLD, **claim)  # type: ignore[arg-type]
            await second.commit()
    else:
        async with a.uow() as first:
            got_a = await first.leases.claim_batch("node-a", now, now + HOLD, **claim)  # type: ignore[arg-type]
            async with b.uow() as second:  # while the first still holds its row locks
                got_b = await asyncio.wait_for(
                    second.leases.claim_batch("node-b", now, now + HOLD, **claim),  # type: ignore[arg-type]
                    timeout=10,
                )
                await second.commit()
            await first.commit()
    assert len(got_a) == 6 and len(got_b) == 4
    assert not set(got_a) & set(got_b)
    assert set(got_a) | set(got_b) == wanted


async def test_one_payment_recorded_by_two_replicas_at_once_is_one_row_and_one_acceptance(
    two_databases: tuple[Database, Database],
) -> None:
    """Notify on one replica and a sentinel's query on the other record the same payment at the
    same moment: ``INSERT … ON CONFLICT DO NOTHING`` then the version check — both answer, one
    payment row, one "accepted", the order PAID once (issue 13, item 3)."""
    card, payments, clock = FakeCard(bonus_fen=2_000), FakePayments(), Clock()
    a, b = centers(two_databases, card, payments, clock)
    orders = [await new_order(a) for _ in range(8)]
    for order in orders:
        paid = payment_of(order)
        sources = ((a, "notification"), (b, "sentinel"), (a, "sentinel"), (b, "notification"))
        ends = await asyncio.gather(*(record_payment(deps, paid, source=src) for deps, src in sources))
        assert {end.status for end in ends} == {S.PAID}
        async with a.uow(readonly=True) as uow:
            rows = await uow.payments.for_order(order.order_no)
        assert [row["transaction_id"] for row in rows] == [paid.transaction_id]
        outcomes = [e.outcome for e in await timeline(b, order.order_no, NOTIFICATION)]
        assert sorted(outcomes) == ["accepted", "duplicate", "duplicate", "duplicate"]
        transitions = [e.to_status for e in await timeline(b, order.order_no, TRANSITION)]
        assert transitions.count(S.PAID) == 1
