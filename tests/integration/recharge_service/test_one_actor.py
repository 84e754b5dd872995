"""One actor per order across replicas (issue 13): two recharge centers on one database — one
crediting after payment notifications, the other running its sentinel with no hold at the same
time, operators on both — never have mutating calls on one order in flight from both replicas at
once; a replica that lost an order's lease writes nothing more to it. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rc_common.clock import utc_now
from rc_common.db import Database
from rc_common.errors import Unavailable
from recharge_service.adapters.orm import metadata
from recharge_service.adapters.unit_of_work import uow_factory
from recharge_service.bootstrap import create_schema
from recharge_service.domain.order import FINAL, Channel, OrderStatus, RechargeOrder
from recharge_service.service_layer import confirm, holding, settle
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.notifications import start_credit
from recharge_service.service_layer.orders import flow
from recharge_service.service_layer.payment import record_payment, record_payment_then_confirm
from recharge_service.service_layer.ports import VOIDED, CardRecharge
from recharge_service.service_layer.sentinel import run_sentinel
from tests.integration.recharge_service.conftest import MCHID, new_order, reload
from tests.integration.recharge_service.fakes import Clock, FakeCard, FakePayments, MemoryMerchants
from tests.integration.recharge_service.sentinel_support import payment_of, policy

S = OrderStatus
MUTATING = {"ConfirmRecharge", "VoidRecharge", "CreateRefund", "CloseOrder"}


@dataclass
class Calls:
    """Every mutating call in flight: (order, method, replica, start, end) on one monotonic clock."""

    spans: list[tuple[str, str, str, float, float]] = field(default_factory=list)

    def overlaps(self) -> list[tuple[str, str, str]]:
        found = []
        for i, (order, method, replica, start, end) in enumerate(self.spans):
            for other, method2, replica2, start2, end2 in self.spans[i + 1 :]:
                if order == other and replica != replica2 and start < end2 and start2 < end:
                    found.append((order, method, method2))
        return found


class ReplicaCard:
    """One replica's client of the shared card system: slow, and timed."""

    def __init__(self, card: FakeCard, replica: str, calls: Calls) -> None:
        self._card, self._replica, self._calls = card, replica, calls

    async def _timed(self, method: str, order_no: str, call: Any) -> Any:
        start = time.monotonic()
        await asyncio.sleep(0.01)
        try:
            return await call
        finally:
            if method in MUTATING:
                self._calls.spans.append((order_no, method, self._replica, start, time.monotonic()))

    async def pre_recharge(self, order_no: str, *args: Any) -> Any:
        return await self._card.pre_recharge(order_no, *args)

    async def confirm_recharge(self, order_no: str, merchant_id: str) -> Any:
        return await self._timed(
            "ConfirmRecharge", order_no, self._card.confirm_recharge(order_no, merchant_id)
        )

    async def void_recharge(self, order_no: str, reason: str, merchant_id: str) -> Any:
        return await self._timed(
            "VoidRecharge", order_no, self._card.void_recharge(order_no, reason, merchant_id)
        )

    async def get_recharge(self, order_no: str, merchant_id: str) -> Any:
        return await self._timed("GetRecharge", order_no, self._card.get_recharge(order_no, merchant_id))


class ReplicaPayments:
    def __init__(self, payments: FakePayments, replica: str, calls: Calls) -> None:
        self._payments, self._replica, self._calls = payments, replica, calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._payments, name)

    async def create_refund(self, account: Any, out_trade_no: str, *args: Any) -> Any:
        start = time.monotonic()
        await asyncio.sleep(0.01)
        try:
            return await self._payments.create_refund(account, out_trade_no, *args)
        finally:
            self._calls.spans.append((out_trade_no, "CreateRefund", self._replica, start, time.monotonic()))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
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


def replicas(
    databases: tuple[Database, Database], card: FakeCard, payments: FakePayments, calls: Calls
) -> tuple[Deps, Deps]:
    merchants, clock = MemoryMerchants.of(), Clock()
    return tuple(  # type: ignore[return-value]
        Deps(
            uow=uow_factory(db),
            card=ReplicaCard(card, name, calls),  # type: ignore[arg-type]
            payments=ReplicaPayments(payments, name, calls),  # type: ignore[arg-type]
            merchants=merchants,
            sp_mchid=MCHID,
            clock=clock,
            node=name,
            lease=timedelta(seconds=30),
        )
        for db, name in zip(databases, ("a", "b"), strict=True)
    )


async def test_the_credit_after_a_payment_and_another_replica_s_sentinel_never_act_on_one_order_at_once(
    shared: tuple[Database, Database],
) -> None:
    card, payments, calls = FakeCard(bonus_fen=2_000), FakePayments(), Calls()
    a, b = replicas(shared, card, payments, calls)
    orders = [await new_order(a) for _ in range(12)]
    for order in orders[::3]:  # some cards were closed meanwhile: void, then refund
        card.records[order.order_no] = CardRecharge(order.order_no, VOIDED)

    async def notify_on_a() -> None:
        for n, order in enumerate(orders):
            if n % 2:  # paid, but its notification was lost: B's sentinel finds it and credits it
                await record_payment(a, payment_of(order), source="query")
                continue
            paid, announced, lease = await record_payment_then_confirm(
                a, payment_of(order), source="notification"
            )
            start_credit(a, paid.order_no, announced=announced, lease=lease)
            await asyncio.sleep(0)

    clock = a.clock
    assert isinstance(clock, Clock)

    async def sentinel_on_b() -> None:
        for _ in range(8):
            await run_sentinel(b, policy(owner="b/sentinel", concurrency=4), ignore_hold=True)
            clock.advance(timedelta(seconds=1))  # (a run does not visit again what it visited)
            await asyncio.sleep(0.005)

    await asyncio.gather(notify_on_a(), sentinel_on_b())
    await a.background.join()
    clock.advance(timedelta(seconds=1))
    await run_sentinel(b, policy(owner="b/sentinel"), ignore_hold=True)  # whatever is left

    assert calls.overlaps() == []
    assert {replica for *_, replica, _s, _e in calls.spans} == {"a", "b"}  # both acted
    for order in orders:
        ended = await reload(a, order.order_no)
        assert ended.status in FINAL | {S.REFUNDING}, order.order_no
        methods = [m for no, m, *_ in calls.spans if no == order.order_no]
        assert {"ConfirmRecharge", "VoidRecharge"} & set(methods) and methods.count("CreateRefund") <= 1


async def test_a_replica_that_lost_the_lease_writes_nothing_and_sends_nothing_more(
    shared: tuple[Database, Database],
) -> None:
    card, payments, calls = FakeCard(bonus_fen=2_000), FakePayments(), Calls()
    a, b = replicas(shared, card, payments, calls)
    order = await new_order(a)
    _paid, _announced, lease = await record_payment_then_confirm(a, payment_of(order), source="notification")
    assert lease is not None and lease.owner == "a/credit"
    # A pauses past its lease; B's operator takes the order over (a new fencing token).
    lease.alive_until = time.monotonic()  # A's own view: the lease ran out
    async with b.uow() as uow:
        now = b.clock() + timedelta(minutes=5)
        taken = await uow.leases.claim_one(order.order_no, "b/ops", now, now + timedelta(seconds=30))
    assert taken == lease.token + 1
    with pytest.raises(holding.LeaseLost) as lost:  # before the call: nothing sent
        async with holding.holding(a, lease), flow(a):
            await confirm.credit(a, order.order_no)
    assert isinstance(lost.value, Unavailable) and lost.value.reason == "ORDER_BUSY"
    assert calls.spans == [] and "ConfirmRecharge" not in card.methods()
    # Its own view says alive, but the database says B's: its write is fenced off.
    lease.alive_until = time.monotonic() + 30
    with pytest.raises(holding.LeaseLost):
        async with holding.holding(a, lease), flow(a):
            await settle.mark_credit_unknown(a, order.order_no, "late")
    assert (await reload(b, order.order_no)).status is S.PAID


async def test_leases_count_by_the_database_clock_whatever_a_replica_s_clock_says(
    shared: tuple[Database, Database],
) -> None:
    """A replica whose clock is an hour behind leases an order for 30 s: by the database's clock
    (the service's setting) the other replica still sees the lease live; by the replicas' own
    clocks it would look an hour old and be taken."""
    first, second = shared
    card, payments, calls = FakeCard(bonus_fen=2_000), FakePayments(), Calls()
    a, _b = replicas(shared, card, payments, calls)
    order = await new_order(a)
    behind, on_time = utc_now() - timedelta(hours=1), utc_now()
    length = timedelta(seconds=30)
    for database_clock in (True, False):
        lagging, right = (uow_factory(db, database_clock=database_clock) for db in (first, second))
        async with lagging() as uow:
            token = await uow.leases.claim_one(order.order_no, f"a/{database_clock}", behind, behind + length)
        assert token is not None
        async with right() as uow:
            stolen = await uow.leases.claim_one(order.order_no, "b", on_time, on_time + length)
        assert (stolen is None) is database_clock  # only the database's clock keeps it a's
        async with right() as uow:  # give it up for the next round
            await uow.leases.release(order.order_no, "b" if stolen else f"a/{database_clock}", on_time)
            await uow.commit()


async def test_a_new_order_s_first_lease_also_ends_by_the_database_clock(
    shared: tuple[Database, Database],
) -> None:
    """The creator's lease, written with the order's insert, counts from the database's clock too:
    a creator whose clock is an hour behind keeps the new order its own for the lease's length."""
    first, second = shared
    behind = utc_now() - timedelta(hours=1)
    length = timedelta(seconds=30)
    for database_clock in (True, False):
        order = RechargeOrder(
            order_no=f"R-first-lease-{database_clock}",
            idempotency_key=f"first-lease-{database_clock}",
            card_no="8800000000000001",
            channel=Channel.POS,
            pay_amount_fen=100,
            payer_openid="o-payer",
            created_at=behind,
            updated_at=behind,
            expires_at=behind + timedelta(minutes=15),
            merchant_id="m",
            merchant_version=1,
        )
        lease = holding.lease_of(order.order_no, "a/create", 1, length, time.monotonic())
        async with uow_factory(first, database_clock=database_clock)() as uow:
            with holding.holding_for_insert(lease):
                await uow.orders.add(order)
            await uow.commit()
        on_time = utc_now()
        async with uow_factory(second, database_clock=database_clock)() as uow:
            stolen = await uow.leases.claim_one(order.order_no, "b", on_time, on_time + length)
        assert (stolen is None) is database_clock
