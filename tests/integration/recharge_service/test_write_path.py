"""The write path's shape: a happy-path top-up costs four write transactions in the recharge
center, and still every remote attempt is on the timeline, its ``sent`` row committed before the
call left (I6)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from rc_common.db import Database
from recharge_service.adapters.card_client import CardClient
from recharge_service.adapters.payment_client import PaymentClient
from recharge_service.adapters.retrying import RetryPolicy
from recharge_service.adapters.unit_of_work import uow_factory
from recharge_service.adapters.wechat_notifications import NotificationOpener
from recharge_service.domain.order import OrderStatus
from recharge_service.domain.timeline import REMOTE_CALL, TRANSITION
from recharge_service.service_layer.create import create_recharge_order
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.notifications import handle_notification
from recharge_service.service_layer.timeline_notes import TimelineNotes
from tests.integration.recharge_service.conftest import MCHID, Wechat, reload
from tests.integration.recharge_service.fakes import MemoryMerchants
from tests.integration.recharge_service.grpc_fakes import FakeCardSystem, FakeWechat, serving
from tests.integration.recharge_service.test_create import command

FAST = RetryPolicy(attempts=3, deadline=0.5, backoff=0.01, backoff_max=0.02)
CARD = "/card.v1.CardSystem/"
PAY = "/wechatpay.v1.PaymentGateway/"


@pytest.fixture
async def wired(
    db: Database, merchants: MemoryMerchants
) -> AsyncIterator[tuple[Deps, FakeCardSystem, FakeWechat]]:
    card, wechat = FakeCardSystem(), FakeWechat()
    async with serving(card, wechat) as server, grpc.aio.insecure_channel(server.address) as channel:
        timeline = TimelineNotes(uow_factory(db))
        deps = Deps(
            uow=uow_factory(db),
            card=CardClient(channel, timeline, FAST, FAST),
            payments=PaymentClient(channel, timeline, FAST, MCHID),
            merchants=merchants,
            sp_mchid=MCHID,
        )
        yield deps, card, wechat
        await deps.background.close(5.0)


async def test_a_happy_top_up_costs_four_write_transactions_and_keeps_every_attempt_on_record(
    db: Database, wired: tuple[Deps, FakeCardSystem, FakeWechat], opener: NotificationOpener, wechat: Wechat
) -> None:
    deps, _card, _wechat = wired
    units = db.stats.units
    order = await create_recharge_order(command(), deps)
    assert order.status is OrderStatus.AWAITING_PAYMENT
    assert db.stats.units - units == 2  # insert + both announcements; both answers + AWAITING
    ack = await handle_notification(deps, opener, *wechat.paid(order))
    assert ack.code == "SUCCESS"
    await deps.background.join()
    assert (await reload(deps, order.order_no)).status is OrderStatus.CREDITED
    assert db.stats.units - units == 4  # + payment, PAID, confirm announced; + answer, CREDITED

    async with deps.uow(readonly=True) as uow:
        entries = await uow.timeline.for_order(order.order_no)
    story = [
        (e.method, e.outcome) if e.kind == REMOTE_CALL else (e.kind, OrderStatus(e.to_status).name)
        for e in entries
        if e.kind in (REMOTE_CALL, TRANSITION)
    ]
    assert story == [
        (TRANSITION, "CREATED"),
        (CARD + "PreRecharge", "sent"),
        (PAY + "CreatePrepay", "sent"),
        (CARD + "PreRecharge", "done"),
        (PAY + "CreatePrepay", "done"),
        (TRANSITION, "AWAITING_PAYMENT"),
        (TRANSITION, "PAID"),
        (CARD + "ConfirmRecharge", "sent"),
        (CARD + "ConfirmRecharge", "done"),
        (TRANSITION, "CREDITED"),
    ]


async def test_a_retried_attempt_is_announced_after_the_answers_before_it(
    db: Database, wired: tuple[Deps, FakeCardSystem, FakeWechat]
) -> None:
    deps, card, _wechat = wired
    card.script("PreRecharge", "unavailable")
    order = await create_recharge_order(command(), deps)
    assert order.status is OrderStatus.AWAITING_PAYMENT
    async with deps.uow(readonly=True) as uow:
        entries = await uow.timeline.for_order(order.order_no)
    assert [(e.method, e.outcome) for e in entries if e.kind == REMOTE_CALL] == [
        (CARD + "PreRecharge", "sent"),
        (PAY + "CreatePrepay", "sent"),
        (CARD + "PreRecharge", "unknown"),  # written with the retry's sent row, before it left
        (CARD + "PreRecharge", "sent"),
        (CARD + "PreRecharge", "done"),
        (PAY + "CreatePrepay", "done"),
    ]
