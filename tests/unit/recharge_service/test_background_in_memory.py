"""The background use cases over the in-memory unit of work: the sentinel's claims and visits,
the outbox dispatcher, the anomaly list."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rc_common.errors import Unavailable
from recharge_service.domain.order import Channel, OrderStatus
from recharge_service.domain.timeline import OUTBOX_DELIVERY, SENTINEL_VISIT
from recharge_service.service_layer import confirm
from recharge_service.service_layer.anomalies import list_anomalies
from recharge_service.service_layer.create import create_recharge_order
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.dispatch import OutboxPolicy, dispatch_once
from recharge_service.service_layer.sentinel import SentinelPolicy, run_sentinel
from recharge_service.settings import OutboxSettings, SentinelSettings
from tests.integration.recharge_service.fakes import (
    MERCHANT,
    Clock,
    FakeCallbacks,
    FakeCard,
    FakeNotices,
    FakePayments,
    MemoryMerchants,
    merchant,
    unknown,
)
from tests.unit.recharge_service.conftest import command, followups, new_order, paid_order, reload
from tests.unit.recharge_service.fake_uow import MemoryStore

S = OrderStatus
HOUR = timedelta(hours=1)
POLICY = SentinelPolicy.from_settings(SentinelSettings(hold=HOUR.total_seconds(), lease=60.0), "sentinel-a")


async def credit_unknown_order(deps: Deps, card: FakeCard, key: str = "key-1") -> str:
    order = await paid_order(deps, key)
    card.script("ConfirmRecharge", unknown("DEADLINE_EXCEEDED"))
    assert (await confirm.credit(deps, order.order_no)).status is S.CREDIT_UNKNOWN
    return order.order_no


# -- the sentinel -----------------------------------------------------------------------------


async def test_the_sentinel_credits_a_credit_unknown_order_once_the_hold_has_passed(
    deps: Deps, store: MemoryStore, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order_no = await credit_unknown_order(deps, card)
    assert (await run_sentinel(deps, POLICY)).examined == 0  # still within the hold
    clock.advance(2 * HOUR)
    units = store.units
    report = await run_sentinel(deps, POLICY)
    assert (report.examined, report.credited) == (1, 1)
    assert store.units - units == 3  # the claim, CREDITED, the visit row with the lease's release
    assert (await reload(deps, order_no)).status is S.CREDITED
    assert card.methods()[-2:] == ["GetRecharge", "ConfirmRecharge"]
    assert "VoidRecharge" not in card.methods() and payments.of("CreateRefund") == []
    assert store.lease(order_no) == (None, None)  # released by the write that made it final
    async with deps.uow(readonly=True) as uow:
        visits = [e for e in await uow.timeline.for_order(order_no) if e.kind == SENTINEL_VISIT]
    assert [(v.outcome, S(v.to_status)) for v in visits] == [("credited", S.CREDITED)]


async def test_the_sentinel_leaves_an_order_leased_to_another_replica_until_the_lease_ends(
    deps: Deps, store: MemoryStore, card: FakeCard, clock: Clock
) -> None:
    order_no = await credit_unknown_order(deps, card)
    clock.advance(2 * HOUR)
    async with deps.uow() as uow:
        assert await uow.leases.claim_one(
            order_no, "sentinel-b", clock.now, clock.now + timedelta(seconds=60)
        )
        assert not await uow.leases.claim_one(order_no, "operator", clock.now, clock.now + HOUR)
    assert (await run_sentinel(deps, POLICY)).examined == 0
    assert store.lease(order_no)[0] == "sentinel-b"
    assert "GetRecharge" not in card.methods()
    clock.advance(timedelta(seconds=61))
    assert (await run_sentinel(deps, POLICY)).credited == 1


async def test_a_run_visits_every_due_order_once_even_when_batches_come_back_full(
    deps: Deps, card: FakeCard, clock: Clock
) -> None:
    orders = [await credit_unknown_order(deps, card, key=f"key-{n}") for n in range(3)]
    clock.advance(2 * HOUR)
    card.script("GetRecharge", *(unknown() for _ in orders))
    report = await run_sentinel(
        deps, SentinelPolicy.from_settings(SentinelSettings(hold=HOUR.total_seconds(), batch=1), "sentinel-a")
    )
    assert (report.examined, report.still_unknown) == (3, 3)
    assert card.methods().count("GetRecharge") == 3
    assert [(await reload(deps, order_no)).attempts for order_no in orders] == [2, 2, 2]


async def test_the_sentinel_closes_an_unpaid_expired_order_at_wechat_first_then_voids_it(
    deps: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await new_order(deps)
    clock.advance(2 * HOUR)  # past the 30-minute expiry and the hold
    report = await run_sentinel(deps, POLICY)
    assert report.closed == 1
    assert [name for name, _ in payments.calls][-2:] == ["QueryOrder", "CloseOrder"]
    assert card.methods()[-1] == "VoidRecharge"
    assert (await reload(deps, order.order_no)).status is S.CLOSED
    assert await followups(deps, order.order_no) == [
        ("business_callback", f"{order.order_no}.closed.callback")
    ]


class ProcessDied(BaseException):
    """The creator's process died (kill -9): nothing after the call runs."""


async def test_an_expired_order_whose_creator_died_with_its_prepay_out_is_closed_at_wechat_before_the_void(
    deps: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    """A create records the pre-recharge together with the prepay's answer, so a creator that died
    while CreatePrepay was out leaves an order knowing no pre-recharge while WeChat holds a payable
    prepay. Found by the chaos run (all, seed 19, 2 replicas): the order was voided and CLOSED while
    WeChat still said NOTPAY (I3)."""
    reached = payments.create_prepay

    async def dies_with_it_out(*args: object, **kwargs: object) -> object:
        await reached(*args, **kwargs)  # type: ignore[arg-type]
        raise ProcessDied

    payments.create_prepay = dies_with_it_out  # type: ignore[method-assign]
    with pytest.raises(ProcessDied):
        await create_recharge_order(command("died"), deps)
    payments.create_prepay = reached  # type: ignore[method-assign]
    async with deps.uow(readonly=True) as uow:
        order = await uow.orders.get_by_idempotency_key(MERCHANT, "died")
    assert order is not None and order.status is S.CREATED and not order.pre_recharge_recorded
    clock.advance(2 * HOUR)  # past the expiry and the hold
    assert (await run_sentinel(deps, POLICY)).closed == 1
    assert [name for name, _ in payments.calls][-1] == "CloseOrder"  # WeChat first: it has a prepay
    assert card.methods()[-1] == "VoidRecharge"
    assert (await reload(deps, order.order_no)).status is S.CLOSED


async def test_the_sentinel_leaves_a_created_order_alone_for_the_void_delay_then_closes_and_voids_it(
    deps: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    card.script("PreRecharge", unknown("DEADLINE_EXCEEDED"))
    with pytest.raises(Unavailable) as unavailable:
        await create_recharge_order(command(), deps)
    order_no = unavailable.value.metadata["order_no"]
    policy = SentinelPolicy.from_settings(SentinelSettings(hold=600.0), "sentinel-a")
    clock.advance(deps.void_delay / 2)  # a retry with the same key may still come
    assert (await run_sentinel(deps, policy)).examined == 0
    clock.advance(deps.void_delay)  # none came: long before the hold and the 30-minute expiry
    assert (await run_sentinel(deps, policy)).closed == 1
    assert card.methods() == ["PreRecharge", "VoidRecharge"]
    assert [name for name, _ in payments.calls] == ["CloseOrder"]  # WeChat first: it never had it
    assert (await reload(deps, order_no)).status is S.CLOSED


# -- the outbox -------------------------------------------------------------------------------


async def test_dispatch_delivers_each_followup_once_and_records_it_in_two_transactions(
    deps: Deps, store: MemoryStore, merchants: MemoryMerchants
) -> None:
    merchants.add(merchant(callbacks={Channel.POS: "127.0.0.1:50051"}))
    order = await paid_order(deps)
    merchants.add(merchant(callbacks={Channel.POS: "127.0.0.1:50999"}))  # the order keeps its version
    await confirm.credit(deps, order.order_no)
    notices, callbacks = FakeNotices(), FakeCallbacks()
    units = store.units
    assert (
        await dispatch_once(deps, notices, callbacks, OutboxPolicy.from_settings(OutboxSettings(), "d1")) == 2
    )
    assert store.units - units == 2  # the claim and the results
    assert (
        await dispatch_once(deps, notices, callbacks, OutboxPolicy.from_settings(OutboxSettings(), "d1")) == 0
    )
    assert [key for *_, key in notices.sent] == [f"{order.order_no}.credited.notice"]
    assert callbacks.sent == [("127.0.0.1:50051", f"{order.order_no}.credited.callback", "CREDITED")]
    async with deps.uow(readonly=True) as uow:
        rows = await uow.outbox.for_order(order.order_no)
        entries = await uow.timeline.for_order(order.order_no)
    assert [(row["status"], row["attempts"], row["lease_owner"]) for row in rows] == [
        ("delivered", 1, None)
    ] * 2
    assert [e.outcome for e in entries if e.kind == OUTBOX_DELIVERY] == ["done", "done"]


async def test_a_failed_notice_waits_for_its_backoff_before_it_is_claimed_again(
    deps: Deps, clock: Clock
) -> None:
    order = await paid_order(deps)
    await confirm.credit(deps, order.order_no)
    notices, callbacks = FakeNotices(), FakeCallbacks()
    notices.scripted.append(unknown())
    policy = OutboxPolicy.from_settings(OutboxSettings(backoff=10.0), "d1")
    assert await dispatch_once(deps, notices, callbacks, policy) == 2  # notice failed, callback skipped
    assert await dispatch_once(deps, notices, callbacks, policy) == 0
    clock.advance(timedelta(seconds=11))
    assert await dispatch_once(deps, notices, callbacks, policy) == 1
    async with deps.uow(readonly=True) as uow:
        rows = await uow.outbox.for_order(order.order_no)
    assert [(row["topic"], row["status"], row["attempts"]) for row in rows] == [
        ("customer_notice", "delivered", 2),
        ("business_callback", "skipped", 0),
    ]


# -- anomalies --------------------------------------------------------------------------------


async def test_anomalies_list_credit_unknown_now_and_paid_orders_once_past_the_hold_in_pages(
    deps: Deps, card: FakeCard, clock: Clock
) -> None:
    stuck = await credit_unknown_order(deps, card, key="key-1")
    paid = (await paid_order(deps, key="key-2")).order_no
    listed = await list_anomalies(deps, hold=HOUR)
    assert [a.order.order_no for a in listed.anomalies] == [stuck]
    clock.advance(2 * HOUR)
    first = await list_anomalies(deps, hold=HOUR, page_size=1)
    assert first.next_page_token
    second = await list_anomalies(deps, hold=HOUR, page_size=1, page_token=first.next_page_token)
    assert second.next_page_token == ""
    found = {a.order.order_no: a for a in first.anomalies + second.anomalies}
    assert set(found) == {stuck, paid}
    assert found[paid].reason == "paid; the credit step has not finished"
    assert found[stuck].age == 2 * HOUR
