"""Issue 14, items 6 and 7 on the real use cases (SQLite, fakes of the other systems):

- L1: a create left by its request (prepay unknown or refused, caller gone) is closed at WeChat and
  its pre-recharge voided after ``void_delay`` — not after the hold — unless a retry with the same
  key resumes it first; a caller already gone writes nothing; calls made for a caller take at most
  its remaining time, and are not started when it would be gone first.
- L2: strangers' unpaid orders cannot block a card's owner (caps per card and per payer, a replay
  never limited), and unpaid orders are closed and voided at expiry whatever the hold.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import pytest

from protos.card.v1 import card_pb2
from rc_common import admission
from rc_common.db import Database
from rc_common.errors import Exhausted, Refused, Unavailable
from rc_common.outcomes import Done, Unknown
from recharge_service.adapters.card_client import CardClient
from recharge_service.adapters.retrying import CALLER_GONE, RetryPolicy
from recharge_service.adapters.unit_of_work import uow_factory
from recharge_service.domain.order import OrderStatus
from recharge_service.service_layer.commands import CreateRechargeOrder
from recharge_service.service_layer.create import create_recharge_order
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.limits import OpenOrderCaps
from recharge_service.service_layer.ports import RECHARGING, VOIDED, PaymentTransaction
from recharge_service.service_layer.sentinel import SentinelPolicy, run_sentinel
from recharge_service.service_layer.timeline_notes import TimelineNotes
from recharge_service.settings import SentinelSettings
from tests.integration.recharge_service.conftest import reload
from tests.integration.recharge_service.fakes import MERCHANT, Clock, FakeCard, FakePayments, refused, unknown
from tests.integration.recharge_service.grpc_fakes import FakeCardSystem, serving
from tests.waiting import eventually

S = OrderStatus
VICTIM_CARD = "8800000000000001"
#: The card system's balance cap in the reproducer: 14 strangers' ¥500 top-ups fill it.
CAP_FEN = 14 * 50_000


def create(
    key: str, openid: str, card_no: str = VICTIM_CARD, pay_amount_fen: int = 50_000
) -> CreateRechargeOrder:
    return CreateRechargeOrder(card_no, pay_amount_fen, 2, key, openid, MERCHANT)


async def orders_on(deps: Deps, card_no: str) -> list[Any]:
    async with deps.uow(readonly=True) as uow:
        return list((await uow.orders.list(merchant_id=MERCHANT, card_no=card_no, page_size=100)).orders)


class CappedCard(FakeCard):
    """The card system's balance cap: a pre-recharge is refused when the card's pending credits
    (RECHARGING pre-recharges) plus this one pass ``CAP_FEN`` (the cards here start empty)."""

    async def pre_recharge(self, order_no: str, card_no: str, pay_amount_fen: int, merchant_id: str) -> Any:
        pending = sum(r.credit_amount_fen for r in self.records.values() if r.status == RECHARGING)
        if order_no not in self.records and pending + pay_amount_fen + self.bonus_fen > CAP_FEN:
            self.calls.append(("PreRecharge", order_no))
            return refused("BALANCE_CAP_EXCEEDED")
        return await super().pre_recharge(order_no, card_no, pay_amount_fen, merchant_id)


@pytest.fixture
def card() -> FakeCard:
    return CappedCard()


# -- L1: left orders are closed and voided promptly ---------------------------------------------


async def test_a_create_left_with_its_prepay_unknown_is_closed_at_wechat_then_voided_after_the_void_delay(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    deps.void_delay = timedelta(seconds=0.2)  # the hold (an hour) and the expiry (30 minutes) are far off
    payments.script("CreatePrepay", unknown())
    with pytest.raises(Unavailable) as left:
        await create_recharge_order(create("k-left", "o-owner"), deps)
    order_no = left.value.metadata["order_no"]
    assert card.records[order_no].status == RECHARGING  # money pending on the card, nobody to finish

    async def closed() -> bool:
        return (await reload(deps, order_no)).status is S.CLOSED

    await eventually(closed, within=10, what="the left order closed")
    assert card.records[order_no].status == VOIDED
    names = [name for name, _ in payments.calls]
    assert names[-1] == "CloseOrder"  # WeChat first: a prepay that got through can no longer be paid
    assert card.methods()[-1] == "VoidRecharge"


async def test_a_create_whose_prepay_was_refused_is_voided_after_the_void_delay(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    deps.void_delay = timedelta(seconds=0.2)
    payments.script("CreatePrepay", refused("PARAM_ERROR"))
    with pytest.raises(Refused) as prepay_refused:
        await create_recharge_order(create("k-refused", "o-owner"), deps)
    order_no = prepay_refused.value.metadata["order_no"]

    async def voided() -> bool:
        return card.records[order_no].status == VOIDED and (await reload(deps, order_no)).status is S.CLOSED

    await eventually(voided, within=10, what="the pre-recharge voided and the order closed")


async def test_a_retry_within_the_void_delay_resumes_the_order_and_nothing_is_voided(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    deps.void_delay = timedelta(seconds=60)
    payments.script("CreatePrepay", unknown())
    with pytest.raises(Unavailable):
        await create_recharge_order(create("k-retry", "o-owner"), deps)
    order = await create_recharge_order(create("k-retry", "o-owner"), deps)
    assert order.status is S.AWAITING_PAYMENT
    assert "VoidRecharge" not in card.methods() and "CloseOrder" not in [n for n, _ in payments.calls]


async def test_the_sentinel_closes_a_left_order_after_the_void_delay_and_not_before(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    timed.void_delay = timedelta(seconds=30)
    payments.script("CreatePrepay", unknown())
    with pytest.raises(Unavailable) as left:
        await create_recharge_order(create("k-sentinel", "o-owner"), timed)
    order_no = left.value.metadata["order_no"]
    policy = SentinelPolicy.from_settings(SentinelSettings(hold=3600.0), "sentinel-a")
    clock.advance(timedelta(seconds=20))
    assert (await run_sentinel(timed, policy)).examined == 0  # a retry may still come
    clock.advance(timedelta(seconds=20))  # 40 s: past the void delay, an hour before the hold
    assert (await run_sentinel(timed, policy)).closed == 1
    assert card.records[order_no].status == VOIDED
    assert (await reload(timed, order_no)).status is S.CLOSED


async def test_a_left_order_that_wechat_says_was_paid_is_never_voided(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    deps.void_delay = timedelta(seconds=0.2)
    payments.script("CreatePrepay", unknown())
    with pytest.raises(Unavailable) as left:
        await create_recharge_order(create("k-paid", "o-owner"), deps)
    order_no = left.value.metadata["order_no"]
    # The prepay got through and the customer paid it: WeChat refuses to close it.
    payments.script("CloseOrder", refused("ORDER_PAID"))
    paid = PaymentTransaction(order_no, "wx-t-1", "SUCCESS", 50_000, "2026-11-26T12:00:00+08:00")
    payments.script("QueryOrder", Done(paid, 1.0))

    async def decided() -> bool:  # a payment of an order never made payable is a person's call
        return (await reload(deps, order_no)).status is S.MANUAL_REVIEW

    await eventually(decided, within=10, what="the paid left order in MANUAL_REVIEW")
    assert "VoidRecharge" not in card.methods()
    assert card.records[order_no].status == RECHARGING  # still creditable


async def test_a_create_whose_caller_is_already_gone_writes_nothing(deps: Deps, card: FakeCard) -> None:
    with admission.serving(0.0), pytest.raises(Unavailable) as gone:
        await create_recharge_order(create("k-gone", "o-owner"), deps)
    assert gone.value.reason == "CALLER_GONE"
    assert await orders_on(deps, VICTIM_CARD) == []
    assert card.calls == []


@pytest.fixture
async def grpc_card() -> AsyncIterator[tuple[FakeCardSystem, list[float | None], grpc.aio.Channel]]:
    fake = FakeCardSystem()
    deadlines: list[float | None] = []  # the deadline each PreRecharge arrived with
    answer = fake.PreRecharge

    async def watched(request: Any, context: Any) -> card_pb2.PreRecharge:
        deadlines.append(context.time_remaining())
        return await answer(request, context)

    fake.PreRecharge = watched  # type: ignore[method-assign]
    async with serving(fake) as server, grpc.aio.insecure_channel(server.address) as channel:
        yield fake, deadlines, channel


async def test_a_call_made_for_a_caller_gets_at_most_its_remaining_time_and_none_when_it_would_be_gone(
    db: Database, grpc_card: tuple[FakeCardSystem, list[float | None], grpc.aio.Channel]
) -> None:
    fake, deadlines, channel = grpc_card
    policy = RetryPolicy(attempts=3, deadline=5.0, backoff=0.01, backoff_max=0.02, margin=0.5)
    client = CardClient(channel, TimelineNotes(uow_factory(db)), policy, policy)
    await client.pre_recharge("R-free", VICTIM_CARD, 50_000, MERCHANT)  # no caller: the setting
    with admission.serving(2.0):
        await client.pre_recharge("R-caller", VICTIM_CARD, 50_000, MERCHANT)
    with admission.serving(0.3):  # less than the margin: the caller would be gone first
        outcome = await client.pre_recharge("R-gone", VICTIM_CARD, 50_000, MERCHANT)
    free, for_caller = deadlines
    assert free is not None and 4.0 < free <= 5.5
    assert for_caller is not None and for_caller <= 1.6  # 2.0 - 0.5, plus the wire's rounding
    assert isinstance(outcome, Unknown) and outcome.code == CALLER_GONE
    assert [r.order_no for _, r in fake.received] == ["R-free", "R-caller"]  # never sent
    async with uow_factory(db)(readonly=True) as uow:
        assert await uow.timeline.for_order("R-gone") == []  # nothing claims it was sent


# -- L2: nobody blocks someone else's card --------------------------------------------------------


async def test_without_caps_strangers_unpaid_orders_block_the_owners_top_up(deps: Deps) -> None:
    """The finding as it was (caps off): 14 unpaid orders fill the card's cap; the owner is refused."""
    deps.caps = OpenOrderCaps(0, 0)
    for i in range(14):
        await create_recharge_order(create(f"mallory-{i}", f"o-mallory-{i % 2}"), deps)
    with pytest.raises(Refused) as blocked:
        await create_recharge_order(create("owner-1", "o-owner", pay_amount_fen=100), deps)
    assert blocked.value.reason == "BALANCE_CAP_EXCEEDED"


async def test_strangers_unpaid_orders_can_no_longer_block_the_owners_top_up(
    deps: Deps, card: FakeCard
) -> None:
    deps.caps = OpenOrderCaps(per_card=3, per_payer=10)
    refused_reasons = []
    for i in range(14):
        try:
            await create_recharge_order(create(f"mallory-{i}", "o-mallory"), deps)
        except Exhausted as exc:
            refused_reasons.append(exc.reason)
    assert refused_reasons == ["CARD_OPEN_ORDERS_LIMIT"] * 11
    assert len(await orders_on(deps, VICTIM_CARD)) == 3  # the refused ones wrote nothing
    assert card.methods().count("PreRecharge") == 3
    owner = await create_recharge_order(create("owner-1", "o-owner", pay_amount_fen=100), deps)
    assert owner.status is S.AWAITING_PAYMENT
    replay = await create_recharge_order(create("mallory-0", "o-mallory"), deps)  # never limited
    assert replay.status is S.AWAITING_PAYMENT


async def test_one_payer_holds_at_most_its_cap_of_unpaid_orders_over_all_cards(deps: Deps) -> None:
    deps.caps = OpenOrderCaps(per_card=3, per_payer=4)
    for i in range(4):
        await create_recharge_order(create(f"p-{i}", "o-spree", card_no=f"88000000000001{i:02d}"), deps)
    with pytest.raises(Exhausted) as capped:
        await create_recharge_order(create("p-4", "o-spree", card_no="8800000000000199"), deps)
    assert capped.value.reason == "PAYER_OPEN_ORDERS_LIMIT"
    assert await orders_on(deps, "8800000000000199") == []


async def test_unpaid_orders_are_closed_and_voided_at_expiry_not_a_hold_later(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await create_recharge_order(create(uuid.uuid4().hex, "o-mallory"), timed)
    assert order.status is S.AWAITING_PAYMENT
    policy = SentinelPolicy.from_settings(SentinelSettings(hold=3600.0), "sentinel-a")
    clock.advance(order.expires_at - clock.now - timedelta(seconds=1))
    assert (await run_sentinel(timed, policy)).examined == 0  # still payable
    clock.advance(timedelta(seconds=2))  # just expired, 59 minutes before the hold would pass
    report = await run_sentinel(timed, policy)
    assert report.closed == 1
    assert card.records[order.order_no].status == VOIDED  # the card's headroom is back
    assert [name for name, _ in payments.calls][-2:] == ["QueryOrder", "CloseOrder"]


async def test_an_undecided_close_of_a_left_order_is_tried_again_and_not_counted_as_an_attempt(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    timed.void_delay = timedelta(seconds=30)
    payments.script("CreatePrepay", unknown())
    with pytest.raises(Unavailable) as left:
        await create_recharge_order(create("k-outage", "o-owner"), timed)
    order_no = left.value.metadata["order_no"]
    attempts = (await reload(timed, order_no)).attempts
    policy = SentinelPolicy.from_settings(SentinelSettings(hold=3600.0, max_attempts=2), "sentinel-a")
    payments.script("CloseOrder", unknown(), unknown(), unknown())  # WeChat is down for three runs
    for _ in range(3):
        clock.advance(timedelta(seconds=40))
        await run_sentinel(timed, policy)
        still = await reload(timed, order_no)
        assert (still.status, still.attempts) == (S.CREATED, attempts)  # not sent to review for it
    assert card.records[order_no].status == RECHARGING  # never voided before WeChat closed it
    clock.advance(timedelta(seconds=40))
    assert (await run_sentinel(timed, policy)).closed == 1
    assert card.records[order_no].status == VOIDED
