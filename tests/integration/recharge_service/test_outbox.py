"""Follow-ups: written with the state change, delivered at least once, seen once by receivers."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import grpc

from recharge_service.adapters.followup_clients import CallbackClient, NoticeClient
from recharge_service.domain.order import Channel, OrderStatus
from recharge_service.domain.timeline import OUTBOX_DELIVERY
from recharge_service.service_layer import confirm
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.dispatch import OutboxPolicy, dispatch_once
from recharge_service.service_layer.payment import record_payment
from recharge_service.service_layer.ports import PaymentTransaction
from recharge_service.settings import OutboxSettings
from tests.integration.recharge_service.conftest import new_order
from tests.integration.recharge_service.fakes import MERCHANT, FakeNotices, MemoryMerchants, unknown
from tests.integration.recharge_service.fakes import FakeCallbacks as MemoryCallbacks
from tests.integration.recharge_service.grpc_fakes import FakeCallbacks, FakeMessages, serving

NO_BACKOFF = OutboxPolicy.from_settings(OutboxSettings(backoff=0.0, backoff_max=0.0, max_attempts=3), "test")


async def credited_order(deps: Deps) -> str:
    order = await new_order(deps)
    await record_payment(
        deps, PaymentTransaction(order.order_no, "4200000001", "SUCCESS", order.pay_amount_fen), source="test"
    )
    assert (await confirm.credit(deps, order.order_no)).status is OrderStatus.CREDITED
    return order.order_no


def call_back(merchants: MemoryMerchants, targets: dict[Channel, str]) -> None:
    """Give the test merchant these callback targets (a new version: orders created after it)."""
    current = merchants.versions[MERCHANT][-1].config
    merchants.add(replace(current, callbacks=targets))


async def outbox_rows(deps: Deps, order_no: str) -> dict[str, tuple[str, int]]:
    async with deps.uow(readonly=True) as uow:
        rows = await uow.outbox.for_order(order_no)
    return {row["topic"]: (row["status"], row["attempts"]) for row in rows}


async def deliveries(deps: Deps, order_no: str) -> list[tuple[str, str]]:
    async with deps.uow(readonly=True) as uow:
        entries = await uow.timeline.for_order(order_no)
    return [(e.method, e.outcome) for e in entries if e.kind == OUTBOX_DELIVERY]


async def test_notice_and_callback_arrive_once_each_even_when_the_first_attempts_fail(
    deps: Deps, merchants: MemoryMerchants
) -> None:
    messages, callbacks = FakeMessages(), FakeCallbacks()
    messages.script("SendTemplateMessage", "unavailable")
    callbacks.script("OnRechargeFinished", "unavailable")
    async with (
        serving(messages) as wechat,
        serving(callbacks) as pos,
        grpc.aio.insecure_channel(wechat.address) as channel,
    ):
        call_back(merchants, {Channel.POS: pos.address})
        order_no = await credited_order(deps)
        callback_client = CallbackClient(deadline=2.0)
        notices = NoticeClient(channel, deadline=2.0)
        try:
            for _ in range(4):  # more rounds than needed: delivered rows are not sent again
                await dispatch_once(deps, notices, callback_client, NO_BACKOFF)
        finally:
            await callback_client.close()
    assert len(messages.of("SendTemplateMessage")) == 2
    assert list(messages.messages) == [f"{order_no}.credited.notice"]
    notice = messages.messages[f"{order_no}.credited.notice"]
    assert notice.openid == "o-payer-1" and notice.data["credit_amount"] == "¥1020.00"
    assert len(callbacks.of("OnRechargeFinished")) == 2
    assert list(callbacks.seen) == [f"{order_no}.credited.callback"]
    assert callbacks.seen[f"{order_no}.credited.callback"].status == OrderStatus.CREDITED
    assert await outbox_rows(deps, order_no) == {
        "customer_notice": ("delivered", 2),
        "business_callback": ("delivered", 2),
    }
    assert sorted(await deliveries(deps, order_no)) == sorted(
        [
            ("customer_notice", "unknown"),
            ("customer_notice", "done"),
            ("business_callback", "unknown"),
            ("business_callback", "done"),
        ]
    )


async def test_a_channel_without_a_callback_target_is_recorded_as_skipped(
    deps: Deps, merchants: MemoryMerchants
) -> None:
    call_back(merchants, {Channel.OFFICIAL_ACCOUNT: "127.0.0.1:1"})
    order_no = await credited_order(deps)
    notices, callbacks = FakeNotices(), MemoryCallbacks()
    await dispatch_once(deps, notices, callbacks, NO_BACKOFF)
    assert callbacks.sent == []  # the order came from POS, which has no target
    assert (await outbox_rows(deps, order_no))["business_callback"] == ("skipped", 0)
    assert ("business_callback", "skipped") in await deliveries(deps, order_no)


async def test_a_callback_goes_to_the_target_of_the_merchant_version_the_order_was_created_with(
    deps: Deps, merchants: MemoryMerchants
) -> None:
    call_back(merchants, {Channel.POS: "pos-old.example:7001"})
    order_no = await credited_order(deps)
    call_back(merchants, {Channel.POS: "pos-new.example:7001"})  # changed after the order was created
    callbacks = MemoryCallbacks()
    await dispatch_once(deps, FakeNotices(), callbacks, NO_BACKOFF)
    assert callbacks.sent == [("pos-old.example:7001", f"{order_no}.credited.callback", "CREDITED")]
    later = await credited_order(deps)
    await dispatch_once(deps, FakeNotices(), callbacks, NO_BACKOFF)
    assert callbacks.sent[-1] == ("pos-new.example:7001", f"{later}.credited.callback", "CREDITED")


async def test_a_follow_up_that_keeps_failing_ends_dead_after_max_attempts(deps: Deps) -> None:
    order_no = await credited_order(deps)
    notices = FakeNotices()
    notices.scripted.extend([unknown()] * 5)
    callbacks = MemoryCallbacks()
    for _ in range(5):
        await dispatch_once(deps, notices, callbacks, NO_BACKOFF)
    assert len(notices.sent) == 3
    assert (await outbox_rows(deps, order_no))["customer_notice"] == ("dead", 3)
    assert [outcome for method, outcome in await deliveries(deps, order_no) if method == "customer_notice"][
        -1
    ].endswith("dead after 3 attempts")


async def test_a_failed_delivery_waits_for_its_backoff(deps: Deps) -> None:
    order_no = await credited_order(deps)
    notices = FakeNotices()
    notices.scripted.append(unknown())
    slow = OutboxPolicy.from_settings(OutboxSettings(backoff=3600.0, backoff_max=3600.0), "test")
    await dispatch_once(deps, notices, MemoryCallbacks(), slow)
    await dispatch_once(deps, notices, MemoryCallbacks(), slow)
    assert len(notices.sent) == 1
    assert (await outbox_rows(deps, order_no))["customer_notice"] == ("pending", 1)


async def test_a_row_claimed_by_another_process_is_not_delivered_twice(deps: Deps) -> None:
    order_no = await credited_order(deps)
    now = deps.clock()
    async with deps.uow() as uow:
        claimed = await uow.outbox.claim("other-process", now, now + timedelta(minutes=1), 10)
        await uow.commit()
    assert len(claimed) == 2
    notices, callbacks = FakeNotices(), MemoryCallbacks()
    assert await dispatch_once(deps, notices, callbacks, NO_BACKOFF) == 0
    assert notices.sent == [] and callbacks.sent == []
    assert await outbox_rows(deps, order_no) == {
        "customer_notice": ("pending", 0),
        "business_callback": ("pending", 0),
    }
