"""Per-merchant limits on new orders: open unpaid orders and the rate of creates, one merchant's
burst never spending another's allowance; replays are never limited; a refusal writes nothing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rc_common.errors import Exhausted
from recharge_service.domain.order import OrderStatus as S
from recharge_service.service_layer.create import create_recharge_order
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.limits import CreateRates
from recharge_service.service_layer.payment import record_payment
from tests.integration.recharge_service.fakes import FakeCard, MemoryMerchants, merchant
from tests.unit.recharge_service.conftest import command, payment_of
from tests.unit.recharge_service.fake_uow import MemoryStore


@dataclass
class Monotonic:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_two_second_burst_then_the_rate() -> None:
    clock = Monotonic()
    rates = CreateRates(monotonic=clock)
    shop = merchant(max_create_rate=5)
    assert [rates.take(shop) for _ in range(10)] == [0.0] * 10  # 2 s worth
    wait = rates.take(shop)
    assert wait == pytest.approx(0.2)  # one token every 1/5 s
    clock.now += 0.2
    assert rates.take(shop) == 0.0
    assert rates.take(shop) > 0
    clock.now += 60  # a quiet minute refills to the burst, not beyond
    assert [rates.take(shop) for _ in range(10)] == [0.0] * 10
    assert rates.take(shop) > 0


def test_buckets_are_per_merchant_and_zero_means_no_limit() -> None:
    rates = CreateRates(monotonic=Monotonic())
    busy, quiet, free = (
        merchant("busy", max_create_rate=1),
        merchant("quiet", max_create_rate=1),
        merchant("free"),
    )
    assert [rates.take(busy) for _ in range(2)] == [0.0, 0.0]
    assert rates.take(busy) > 0
    assert rates.take(quiet) == 0.0  # busy's burst did not spend quiet's tokens
    assert all(rates.take(free) == 0.0 for _ in range(1000))


def open_count(store: MemoryStore, merchant_id: str) -> int:
    return sum(
        1
        for r in store.tables.orders.values()
        if r.order.merchant_id == merchant_id and r.order.status in (S.CREATED, S.AWAITING_PAYMENT)
    )


async def test_open_orders_beyond_the_limit_are_exhausted_writing_nothing(
    deps: Deps, store: MemoryStore, merchants: MemoryMerchants, card: FakeCard
) -> None:
    merchants.add(merchant(max_open_orders=2))
    merchants.add(merchant("shop-b"))
    first = await create_recharge_order(command("k1"), deps)
    await create_recharge_order(command("k2"), deps)
    calls = len(card.calls)
    with pytest.raises(Exhausted) as refused:
        await create_recharge_order(command("k3"), deps)
    assert refused.value.reason == "MERCHANT_OPEN_ORDERS_LIMIT"
    assert refused.value.metadata["merchant_id"] == "shop-a"
    assert len(store.tables.orders) == 2 and len(card.calls) == calls  # nothing written, nobody called

    # replays are answered; another merchant is not limited by shop-a's orders
    assert (await create_recharge_order(command("k1"), deps)).order_no == first.order_no
    other = await create_recharge_order(command("k3", merchant_id="shop-b"), deps)
    assert other.merchant_id == "shop-b"

    # once one is paid, there is room again
    await record_payment(deps, payment_of(first), source="test")
    made = await create_recharge_order(command("k3"), deps)
    assert made.status is S.AWAITING_PAYMENT and open_count(store, "shop-a") == 2


async def test_creates_beyond_the_rate_are_exhausted_with_when_to_retry(
    deps: Deps, store: MemoryStore, merchants: MemoryMerchants
) -> None:
    clock = Monotonic()
    deps.create_rates = CreateRates(monotonic=clock)
    merchants.add(merchant(max_create_rate=1))  # a burst of 2
    merchants.add(merchant("shop-b", max_create_rate=1))
    await create_recharge_order(command("k1"), deps)
    await create_recharge_order(command("k2"), deps)
    with pytest.raises(Exhausted) as refused:
        await create_recharge_order(command("k3"), deps)
    assert refused.value.reason == "MERCHANT_RATE_LIMITED"
    assert refused.value.metadata["retry_after_ms"] == "1000"
    assert len(store.tables.orders) == 2
    await create_recharge_order(command("k1"), deps)  # a replay takes no token and is not refused
    await create_recharge_order(command("k3", merchant_id="shop-b"), deps)  # shop-b has its own
    clock.now += 1.0
    assert (await create_recharge_order(command("k3"), deps)).status is S.AWAITING_PAYMENT
