"""Fixtures for use-case tests over the in-memory unit of work (no SQLite, no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.domain.timeline import TRANSITION
from recharge_service.service_layer.commands import CreateRechargeOrder
from recharge_service.service_layer.create import create_recharge_order
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.payment import record_payment
from recharge_service.service_layer.ports import PaymentTransaction
from tests.integration.recharge_service.fakes import (
    MERCHANT,
    SP_MCHID,
    Clock,
    FakeCard,
    FakePayments,
    MemoryMerchants,
)
from tests.unit.recharge_service.fake_uow import MemoryStore

MCHID = SP_MCHID
CARD_NO = "8800000000000001"
POS = 2


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def card() -> FakeCard:
    return FakeCard(bonus_fen=2_000)


@pytest.fixture
def payments() -> FakePayments:
    return FakePayments()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def merchants() -> MemoryMerchants:
    """The test merchant ``shop-a`` (partner mode, every channel, orders expire after 30 minutes)."""
    return MemoryMerchants.of()


@pytest.fixture
async def deps(
    store: MemoryStore, card: FakeCard, payments: FakePayments, clock: Clock, merchants: MemoryMerchants
) -> AsyncIterator[Deps]:
    built = Deps(
        uow=store.uow_factory(),
        card=card,
        payments=payments,
        merchants=merchants,
        sp_mchid=MCHID,
        clock=clock,
    )
    yield built
    await built.background.close(5.0)


def command(key: str = "key-1", **changes: object) -> CreateRechargeOrder:
    values: dict[str, object] = {
        "card_no": CARD_NO,
        "pay_amount_fen": 100_000,
        "channel": POS,
        "idempotency_key": key,
        "payer_openid": "o-payer-1",
        "merchant_id": MERCHANT,
    }
    values.update(changes)
    return CreateRechargeOrder(**values)  # type: ignore[arg-type]


def payment_of(order: RechargeOrder, transaction_id: str = "") -> PaymentTransaction:
    return PaymentTransaction(
        order.order_no,
        transaction_id or f"4200{order.order_no[-10:]}",
        "SUCCESS",
        order.pay_amount_fen,
        "2026-11-26T12:00:05+08:00",
    )


async def new_order(deps: Deps, key: str = "key-1") -> RechargeOrder:
    order = await create_recharge_order(command(key), deps)
    assert order.status is OrderStatus.AWAITING_PAYMENT
    return order


async def paid_order(deps: Deps, key: str = "key-1") -> RechargeOrder:
    order = await record_payment(deps, payment_of(await new_order(deps, key)), source="test")
    assert order.status is OrderStatus.PAID
    return order


async def reload(deps: Deps, order_no: str) -> RechargeOrder:
    async with deps.uow(readonly=True) as uow:
        order = await uow.orders.get(order_no)
    assert order is not None
    return order


async def followups(deps: Deps, order_no: str) -> list[tuple[str, str]]:
    async with deps.uow(readonly=True) as uow:
        rows = await uow.outbox.for_order(order_no)
    return [(row["topic"], row["event_id"]) for row in rows]


async def transitions(deps: Deps, order_no: str) -> list[str]:
    """The statuses the order moved to, in order (from its timeline)."""
    async with deps.uow(readonly=True) as uow:
        entries = await uow.timeline.for_order(order_no)
    return [OrderStatus(e.to_status).name for e in entries if e.kind == TRANSITION]
