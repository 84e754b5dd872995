"""The sentinel against a real SQLite database and fake card system / WeChat Pay: each state's step,
the hold, attempts and age limits, leases, the visit on the timeline, cancellation."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from rc_common.errors import Unavailable
from rc_common.outcomes import Done
from recharge_service.domain.merchant import WechatAccount, WechatMode
from recharge_service.domain.order import OrderStatus
from recharge_service.service_layer.commands import CreateRechargeOrder
from recharge_service.service_layer.create import create_recharge_order
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.notifications import start_credit
from recharge_service.service_layer.ports import (
    RECHARGING,
    SUCCEEDED,
    VOIDED,
    CardRecharge,
    PaymentTransaction,
    RefundResult,
)
from recharge_service.service_layer.sentinel import run_sentinel
from recharge_service.settings import OnPending
from tests.integration.recharge_service.conftest import new_order, reload
from tests.integration.recharge_service.fakes import (
    MERCHANT,
    Clock,
    FakeCard,
    FakePayments,
    MemoryMerchants,
    merchant,
    refused,
    unknown,
)
from tests.integration.recharge_service.sentinel_support import (
    EXPIRY,
    HOLD,
    credit_unknown_order,
    lease_of,
    paid_order,
    payment_of,
    policy,
    timeline,
)
from tests.waiting import eventually

S = OrderStatus
LATER = HOLD + timedelta(seconds=1)


async def test_an_order_changed_within_the_hold_is_left_alone_unless_the_hold_is_ignored(
    timed: Deps, card: FakeCard, clock: Clock
) -> None:
    order = await credit_unknown_order(timed, card)
    clock.advance(HOLD - timedelta(seconds=1))
    report = await run_sentinel(timed, policy())
    assert report.examined == 0 and card.methods().count("GetRecharge") == 0
    report = await run_sentinel(timed, policy(), ignore_hold=True)
    assert report.examined == 1 and report.credited == 1
    assert (await reload(timed, order.order_no)).status is S.CREDITED


async def test_a_credit_unknown_order_the_card_credited_is_credited_without_confirming_again(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await credit_unknown_order(timed, card)
    card.records[order.order_no] = CardRecharge(order.order_no, SUCCEEDED, 2_000, 102_000, 1)  # late success
    confirms = card.methods().count("ConfirmRecharge")
    clock.advance(LATER)
    report = await run_sentinel(timed, policy())
    assert (report.examined, report.credited) == (1, 1)
    ended = await reload(timed, order.order_no)
    assert ended.status is S.CREDITED
    assert card.methods().count("ConfirmRecharge") == confirms
    assert "VoidRecharge" not in card.methods() and payments.of("CreateRefund") == []
    (visit,) = await timeline(timed, order.order_no, "sentinel_visit")
    assert (visit.actor, visit.outcome, visit.from_status, visit.to_status) == (
        "sentinel",
        "credited",
        S.CREDIT_UNKNOWN,
        S.CREDITED,
    )
    credited = [e for e in await timeline(timed, order.order_no, "transition") if e.to_status == S.CREDITED]
    assert [e.actor for e in credited] == ["sentinel"]
    assert await lease_of(timed, order.order_no) is None


async def test_a_paid_order_still_recharging_is_confirmed_again_before_any_refund(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await paid_order(timed)  # a crash between PAID and the credit step
    clock.advance(LATER)
    report = await run_sentinel(timed, policy())
    assert report.credited == 1
    assert (await reload(timed, order.order_no)).status is S.CREDITED
    assert card.methods()[-2:] == ["GetRecharge", "ConfirmRecharge"]
    assert "VoidRecharge" not in card.methods() and payments.of("CreateRefund") == []


async def test_with_on_pending_refund_a_recharging_order_is_voided_before_it_is_refunded(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await credit_unknown_order(timed, card)
    clock.advance(LATER)
    report = await run_sentinel(timed, policy(on_pending=OnPending.REFUND))
    assert report.refunding == 1
    assert card.methods()[-2:] == ["GetRecharge", "VoidRecharge"]
    assert [c["out_refund_no"] for c in payments.of("CreateRefund")] == [f"{order.order_no}-R1"]
    assert (await reload(timed, order.order_no)).status is S.REFUNDING


async def test_a_voided_pre_recharge_takes_the_refund_path(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await credit_unknown_order(timed, card)
    card.records[order.order_no] = CardRecharge(order.order_no, VOIDED)
    clock.advance(LATER)
    report = await run_sentinel(timed, policy())
    assert report.refunding == 1
    assert (await reload(timed, order.order_no)).status is S.REFUNDING
    assert card.methods()[-2:] == ["GetRecharge", "VoidRecharge"]
    assert [c["out_trade_no"] for c in payments.of("CreateRefund")] == [order.order_no]


async def test_a_refused_void_refunds_nothing_and_counts_an_attempt(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await credit_unknown_order(timed, card)
    card.records[order.order_no] = CardRecharge(order.order_no, VOIDED)
    card.script("VoidRecharge", refused("SOMETHING_ODD"))
    clock.advance(LATER)
    report = await run_sentinel(timed, policy())
    assert report.still_unknown == 1
    ended = await reload(timed, order.order_no)
    assert ended.status is S.CREDIT_UNKNOWN and ended.attempts == 2 and "SOMETHING_ODD" in ended.last_error
    assert payments.of("CreateRefund") == []


async def test_undecided_visits_count_as_attempts_and_send_the_order_to_manual_review(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await credit_unknown_order(timed, card)  # attempt 1 (the notify path)
    clock.advance(LATER)
    for run in (2, 3):
        card.script("GetRecharge", unknown())
        clock.advance(timedelta(seconds=1))  # a later run (a run visits an order at most once)
        report = await run_sentinel(timed, policy(max_attempts=3))
        current = await reload(timed, order.order_no)
        assert current.attempts == run and "GetRecharge UNAVAILABLE" in current.last_error
    assert report.manual_review == 1
    assert current.status is S.MANUAL_REVIEW
    assert "3 undecided attempts" in current.failure_reason
    visits = await timeline(timed, order.order_no, "sentinel_visit")
    assert [v.outcome for v in visits] == ["still_unknown", "manual_review"]
    assert all("GetRecharge UNAVAILABLE" in f"{v.detail} {v.error}" for v in visits)
    clock.advance(timedelta(seconds=1))
    assert (await run_sentinel(timed, policy(), ignore_hold=True)).examined == 0  # never MANUAL_REVIEW
    assert "VoidRecharge" not in card.methods() and payments.of("CreateRefund") == []


async def test_an_order_older_than_the_max_age_goes_to_manual_review(
    timed: Deps, card: FakeCard, clock: Clock
) -> None:
    order = await credit_unknown_order(timed, card)
    clock.advance(timedelta(hours=25))
    card.script("GetRecharge", unknown())
    report = await run_sentinel(timed, policy())
    assert report.manual_review == 1
    ended = await reload(timed, order.order_no)
    assert ended.status is S.MANUAL_REVIEW and "after creation" in ended.failure_reason


async def test_a_refunding_order_waits_while_processing_then_is_refunded(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await credit_unknown_order(timed, card)
    card.records[order.order_no] = CardRecharge(order.order_no, VOIDED)
    clock.advance(LATER)
    await run_sentinel(timed, policy())  # -> REFUNDING, refund PROCESSING
    clock.advance(LATER)
    before = await reload(timed, order.order_no)
    report = await run_sentinel(timed, policy(max_attempts=1))
    assert report.refunding == 1
    waiting = await reload(timed, order.order_no)
    assert waiting.status is S.REFUNDING and waiting.attempts == before.attempts  # not an attempt
    payments.refund_status = "SUCCESS"
    clock.advance(timedelta(seconds=1))
    report = await run_sentinel(timed, policy())
    assert report.refunded == 1
    assert (await reload(timed, order.order_no)).status is S.REFUNDED
    assert len(payments.of("CreateRefund")) == 1


async def test_a_refund_wechat_never_received_is_sent_again_with_the_same_number(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await credit_unknown_order(timed, card)
    card.records[order.order_no] = CardRecharge(order.order_no, VOIDED)
    payments.script("CreateRefund", unknown("DEADLINE_EXCEEDED"))
    clock.advance(LATER)
    await run_sentinel(timed, policy())
    payments.script("QueryRefund", refused("RESOURCE_NOT_EXISTS", code="NOT_FOUND"))
    clock.advance(LATER)
    await run_sentinel(timed, policy())
    first, second = payments.of("CreateRefund")
    assert first == second and first["out_refund_no"] == f"{order.order_no}-R1"
    assert card.methods().count("VoidRecharge") == 1


async def test_an_abnormal_refund_goes_to_manual_review(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await credit_unknown_order(timed, card)
    card.records[order.order_no] = CardRecharge(order.order_no, VOIDED)
    clock.advance(LATER)
    await run_sentinel(timed, policy())
    payments.script("QueryRefund", Done(RefundResult(f"{order.order_no}-R1", "r1", "ABNORMAL"), 1.0))
    clock.advance(LATER)
    report = await run_sentinel(timed, policy())
    assert report.manual_review == 1
    ended = await reload(timed, order.order_no)
    assert ended.status is S.MANUAL_REVIEW and "ABNORMAL" in ended.failure_reason


async def test_a_lost_notification_is_found_by_query_and_the_order_is_credited(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await new_order(timed)
    payments.script("QueryOrder", Done(payment_of(order), 1.0))
    clock.advance(LATER)
    report = await run_sentinel(timed, policy())
    assert report.credited == 1
    ended = await reload(timed, order.order_no)
    assert ended.status is S.CREDITED and ended.transaction_id == payment_of(order).transaction_id
    paid = [e for e in await timeline(timed, order.order_no, "transition") if e.to_status == S.PAID]
    assert [e.actor for e in paid] == ["sentinel"]


async def test_an_unpaid_order_past_expiry_is_closed_at_wechat_then_voided(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await new_order(timed)
    clock.advance(LATER)
    report = await run_sentinel(timed, policy())
    assert report.closed == 1
    ended = await reload(timed, order.order_no)
    assert ended.status is S.CLOSED
    assert [name for name, _ in payments.calls][-2:] == ["QueryOrder", "CloseOrder"]
    assert card.methods()[-1] == "VoidRecharge" and card.records[order.order_no].status == VOIDED
    async with timed.uow(readonly=True) as uow:
        queued = [row["event_id"] for row in await uow.outbox.for_order(order.order_no)]
    assert queued == [f"{order.order_no}.closed.callback"]


async def test_a_close_refused_because_the_order_was_just_paid_takes_the_paid_path(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await new_order(timed)
    payments.script("CloseOrder", refused("ORDER_PAID"))
    payments.script("QueryOrder", Done(PaymentTransaction(order.order_no, "", "NOTPAY", 0), 1.0))
    payments.script("QueryOrder", Done(payment_of(order), 1.0))
    clock.advance(LATER)
    report = await run_sentinel(timed, policy())
    assert report.credited == 1
    assert (await reload(timed, order.order_no)).status is S.CREDITED
    assert "VoidRecharge" not in card.methods()


async def test_an_unpaid_order_not_yet_expired_is_left_without_counting_an_attempt(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await new_order(timed)
    clock.advance(timedelta(minutes=10))
    report = await run_sentinel(timed, policy(max_attempts=1), ignore_hold=True)
    assert (report.examined, report.skipped) == (1, 1)
    ended = await reload(timed, order.order_no)
    assert ended.status is S.AWAITING_PAYMENT and ended.attempts == 0
    assert "CloseOrder" not in [name for name, _ in payments.calls]


async def test_a_created_order_past_expiry_is_voided_leaving_a_tombstone_and_closed(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    card.script("PreRecharge", unknown(), unknown(), unknown())
    command = CreateRechargeOrder("8800000000000001", 100_000, 2, "k-1", "o-1", MERCHANT)
    with pytest.raises(Unavailable) as unavailable:  # the pre-recharge's outcome is unknown
        await create_recharge_order(command, timed)
    order_no = unavailable.value.metadata["order_no"]
    timed.void_delay = 2 * EXPIRY  # the expiry, not the void delay, closes it here
    expiry = (await reload(timed, order_no)).expires_at - clock.now
    assert expiry == EXPIRY  # the merchant's payment window
    clock.advance(EXPIRY - timedelta(minutes=1))
    assert (await run_sentinel(timed, policy(), ignore_hold=True)).examined == 0  # not expired yet
    clock.advance(timedelta(minutes=2))
    report = await run_sentinel(timed, policy(), ignore_hold=True)
    assert report.closed == 1
    assert (await reload(timed, order_no)).status is S.CLOSED
    assert card.methods()[-1] == "VoidRecharge" and card.records[order_no].status == VOIDED
    # WeChat first, always: an order that knows no pre-recharge may still have a prepay out (its
    # creator records both together); this one never had one (real WeChat: ORDER_NOT_EXIST).
    assert [name for name, _ in payments.calls] == ["CloseOrder"]
    assert card.methods()[-1] == "VoidRecharge"


async def test_a_pre_recharge_that_landed_with_every_answer_lost_is_voided_and_the_order_keeps_its_record(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    card.script("PreRecharge", unknown(), unknown(), unknown())
    command = CreateRechargeOrder("8800000000000001", 100_000, 2, "k-1", "o-1", MERCHANT)
    with pytest.raises(Unavailable) as unavailable:
        await create_recharge_order(command, timed)
    order_no = unavailable.value.metadata["order_no"]
    # The third attempt landed after all (late success): the card system holds it RECHARGING.
    card.records[order_no] = CardRecharge(order_no, RECHARGING, 2_000, 102_000, 3)
    clock.advance(EXPIRY + timedelta(minutes=1))
    assert (await run_sentinel(timed, policy(), ignore_hold=True)).closed == 1
    ended = await reload(timed, order_no)
    assert card.records[order_no].status == VOIDED
    # the order tells the card system's story: the bonus it would have had, voided, never paid
    assert (ended.status, ended.bonus_fen, ended.credit_amount_fen, ended.rule_version) == (
        S.CLOSED,
        2_000,
        102_000,
        3,
    )
    assert [name for name, _ in payments.calls] == ["CloseOrder"]  # WeChat first, then the void


async def test_each_merchants_unpaid_orders_close_at_its_own_expiry_for_its_wechat_account(
    timed: Deps, payments: FakePayments, clock: Clock, merchants: MemoryMerchants
) -> None:
    account = WechatAccount(WechatMode.PARTNER, "1900000202", "wx4444444444444444")
    quick = merchants.add(merchant("shop-b", order_expiry=timedelta(minutes=5), wechat=account))
    slow = await new_order(timed)  # shop-a: 30 minutes
    fast = await new_order(timed, merchant_id=quick.merchant_id)
    clock.advance(timedelta(minutes=6))
    report = await run_sentinel(timed, policy(), ignore_hold=True)
    assert report.closed == 1
    assert (await reload(timed, fast.order_no)).status is S.CLOSED
    assert (await reload(timed, slow.order_no)).status is S.AWAITING_PAYMENT
    asked = {(name, args["out_trade_no"], args["account"]) for name, args in payments.calls[2:]}
    shop_a = await merchants.current(MERCHANT)
    assert shop_a is not None
    assert asked == {  # the open order is only looked up; each call for its merchant's account
        ("QueryOrder", slow.order_no, shop_a.wechat),
        ("QueryOrder", fast.order_no, account),
        ("CloseOrder", fast.order_no, account),
    }


async def test_a_void_of_an_unpaid_order_that_answers_succeeded_goes_to_manual_review(
    timed: Deps, card: FakeCard, clock: Clock
) -> None:
    order = await new_order(timed)
    card.script("VoidRecharge", Done(CardRecharge(order.order_no, SUCCEEDED), 1.0))
    clock.advance(LATER)
    report = await run_sentinel(timed, policy())
    assert report.manual_review == 1
    assert "without a payment" in (await reload(timed, order.order_no)).failure_reason


async def test_a_paid_order_whose_credit_step_holds_its_lease_is_left_to_it(
    timed: Deps, card: FakeCard, clock: Clock
) -> None:
    order = await paid_order(timed)
    card.confirm_gate = asyncio.Event()
    start_credit(timed, order.order_no)
    credit_waits = ("ConfirmRecharge", order.order_no)
    await eventually(lambda: credit_waits in card.calls, what="the credit step waiting in ConfirmRecharge")
    clock.advance(timed.lease / 2)  # past a (short) hold, within the credit's lease
    report = await run_sentinel(timed, policy(hold=1.0))
    assert report.examined == 0  # not claimable: the credit holds the order
    assert card.methods().count("GetRecharge") == 0
    card.confirm_gate.set()
    await timed.background.join()
    assert (await reload(timed, order.order_no)).status is S.CREDITED


async def test_a_cancelled_run_leaves_leases_that_expire_and_the_next_run_finishes(
    timed: Deps, card: FakeCard, clock: Clock
) -> None:
    order = await paid_order(timed)
    card.confirm_gate = asyncio.Event()
    clock.advance(LATER)
    run = asyncio.ensure_future(run_sentinel(timed, policy(owner="node-a")))
    await eventually(lambda: "ConfirmRecharge" in card.methods(), what="the visit waiting in ConfirmRecharge")
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    assert await lease_of(timed, order.order_no) == "node-a"
    card.confirm_gate = None
    assert (await run_sentinel(timed, policy(owner="node-b"))).examined == 0  # still leased
    clock.advance(timedelta(seconds=61))
    report = await run_sentinel(timed, policy(owner="node-b"))
    assert report.credited == 1
    assert (await reload(timed, order.order_no)).status is S.CREDITED


async def test_a_run_visits_every_due_order_once_even_beyond_one_batch_and_undecided_ones_go_last(
    timed: Deps, card: FakeCard, clock: Clock
) -> None:
    orders = []
    for _ in range(3):  # oldest first
        orders.append((await credit_unknown_order(timed, card)).order_no)
        clock.advance(timedelta(seconds=1))
    card.script("GetRecharge", *[unknown() for _ in range(12)])  # the card system stays silent
    clock.advance(LATER)
    report = await run_sentinel(timed, policy(batch=2, concurrency=1))
    assert (report.examined, report.still_unknown) == (3, 3)
    assert [len(await timeline(timed, o, "sentinel_visit")) for o in orders] == [1, 1, 1]
    assert card.methods().count("GetRecharge") == 3  # nobody twice
    newest = await credit_unknown_order(timed, card)
    clock.advance(LATER)
    card.scripted.clear()
    seen: list[str] = []
    original = card.get_recharge

    async def watching(order_no: str, merchant_id: str):  # type: ignore[no-untyped-def]
        seen.append(order_no)
        return await original(order_no, merchant_id)

    card.get_recharge = watching  # type: ignore[method-assign]
    await run_sentinel(timed, policy(batch=2, concurrency=1))
    assert seen[0] == newest.order_no  # never visited goes first; the long-undecided ones after
