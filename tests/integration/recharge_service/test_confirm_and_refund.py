"""The credit step and the refund path, with fake card system and WeChat Pay."""

from __future__ import annotations

from sqlalchemy import select

from rc_common.db import Database
from rc_common.outcomes import Done
from recharge_service.adapters.orm import outbox
from recharge_service.adapters.wechat_notifications import NotificationOpener
from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.service_layer import confirm, refund
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.notifications import handle_notification
from recharge_service.service_layer.payment import record_payment
from recharge_service.service_layer.ports import (
    RECHARGING,
    SUCCEEDED,
    CardRecharge,
    PaymentTransaction,
    RefundResult,
)
from tests.integration.recharge_service.conftest import Wechat, new_order, reload
from tests.integration.recharge_service.fakes import FakeCard, FakePayments, refused, unknown

S = OrderStatus


async def paid_order(deps: Deps) -> RechargeOrder:
    order = await new_order(deps)
    await record_payment(
        deps,
        PaymentTransaction(order.order_no, f"4200{order.order_no[-10:]}", "SUCCESS", order.pay_amount_fen),
        source="test",
    )
    paid = await reload(deps, order.order_no)
    assert paid.status is S.PAID
    return paid


async def followups(deps: Deps, order_no: str) -> list[tuple[str, str]]:
    async with deps.uow(readonly=True) as uow:
        rows = await uow.outbox.for_order(order_no)
    return [(row["topic"], row["event_id"]) for row in rows]


async def test_a_confirmed_credit_is_credited_with_a_notice_and_a_callback_queued(
    deps: Deps, card: FakeCard
) -> None:
    order = await paid_order(deps)
    credited = await confirm.credit(deps, order.order_no)
    assert credited.status is S.CREDITED
    assert await followups(deps, order.order_no) == [
        ("customer_notice", f"{order.order_no}.credited.notice"),
        ("business_callback", f"{order.order_no}.credited.callback"),
    ]


async def test_an_unknown_confirm_is_credit_unknown_and_nothing_is_voided_or_refunded(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await paid_order(deps)
    card.script("ConfirmRecharge", unknown("DEADLINE_EXCEEDED"))
    result = await confirm.credit(deps, order.order_no)
    assert result.status is S.CREDIT_UNKNOWN
    assert result.attempts == 1 and "DEADLINE_EXCEEDED" in result.last_error
    assert "VoidRecharge" not in card.methods()
    assert payments.of("CreateRefund") == []
    assert await followups(deps, order.order_no) == []
    # Asked again later (the sentinel), the credit lands exactly once.
    again = await confirm.credit(deps, order.order_no)
    assert again.status is S.CREDITED
    assert card.methods().count("ConfirmRecharge") == 2


async def test_an_unexpected_confirm_refusal_is_treated_as_unknown_not_as_a_reason_to_refund(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await paid_order(deps)
    card.script("ConfirmRecharge", refused("SOMETHING_ELSE"))
    result = await confirm.credit(deps, order.order_no)
    assert result.status is S.CREDIT_UNKNOWN
    assert "VoidRecharge" not in card.methods() and payments.of("CreateRefund") == []


async def test_a_frozen_card_voids_first_then_refunds_with_the_order_refund_number(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await paid_order(deps)
    card.script("ConfirmRecharge", refused("CARD_FROZEN"))
    result = await confirm.credit(deps, order.order_no)
    assert result.status is S.REFUNDING
    assert result.out_refund_no == f"{order.order_no}-R1"
    assert card.methods()[-2:] == ["ConfirmRecharge", "VoidRecharge"]
    shop = await deps.merchants.version(order.merchant_id, order.merchant_version)
    assert shop is not None
    assert payments.of("CreateRefund") == [
        {
            "account": shop.wechat,  # the order's merchant's WeChat account
            "out_trade_no": order.order_no,
            "out_refund_no": f"{order.order_no}-R1",
            "refund_fen": 100_000,
            "total_fen": 100_000,
        }
    ]


async def test_a_voided_pre_recharge_and_a_missing_one_both_take_the_refund_path(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    voided = await paid_order(deps)
    card.script("ConfirmRecharge", Done(CardRecharge(voided.order_no, "VOIDED"), 1.0))
    assert (await confirm.credit(deps, voided.order_no)).status is S.REFUNDING
    missing = await paid_order(deps)
    card.script("ConfirmRecharge", refused("RECHARGE_NOT_FOUND", code="NOT_FOUND"))
    assert (await confirm.credit(deps, missing.order_no)).status is S.REFUNDING
    assert [c["out_refund_no"] for c in payments.of("CreateRefund")] == [
        f"{voided.order_no}-R1",
        f"{missing.order_no}-R1",
    ]


async def test_refund_is_requested_only_after_a_voided_answer(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await paid_order(deps)
    card.script(
        "VoidRecharge", unknown(), refused("WHATEVER"), Done(CardRecharge(order.order_no, RECHARGING), 1.0)
    )
    for _ in range(3):
        result = await refund.refund_path(deps, order.order_no, "test")
        assert result.status is S.CREDIT_UNKNOWN
        assert payments.of("CreateRefund") == []
    assert card.methods().count("VoidRecharge") == 3
    result = await refund.refund_path(deps, order.order_no, "test")  # the fake now voids it
    assert result.status is S.REFUNDING
    assert len(payments.of("CreateRefund")) == 1


async def test_a_void_that_finds_the_credit_landed_marks_credited_and_never_refunds(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await paid_order(deps)
    card.script("ConfirmRecharge", unknown())
    await confirm.credit(deps, order.order_no)
    card.script("VoidRecharge", Done(CardRecharge(order.order_no, SUCCEEDED), 1.0))
    result = await refund.refund_path(deps, order.order_no, "operator asked")
    assert result.status is S.CREDITED
    assert payments.of("CreateRefund") == []
    assert [topic for topic, _ in await followups(deps, order.order_no)] == [
        "customer_notice",
        "business_callback",
    ]


async def test_a_retried_refund_sends_the_same_number_and_amounts_and_does_not_void_again(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await paid_order(deps)
    payments.script("CreateRefund", unknown("DEADLINE_EXCEEDED"))
    first = await refund.refund_path(deps, order.order_no, "card closed")
    assert first.status is S.REFUNDING and first.attempts == 1
    second = await refund.refund_path(deps, order.order_no, "card closed")
    assert second.status is S.REFUNDING
    one, two = payments.of("CreateRefund")
    assert one == two and one["out_refund_no"] == f"{order.order_no}-R1"
    assert card.methods().count("VoidRecharge") == 1


async def test_a_refund_answered_success_is_refunded_with_the_failure_followups(
    deps: Deps, payments: FakePayments
) -> None:
    order = await paid_order(deps)
    payments.refund_status = "SUCCESS"
    result = await refund.refund_path(deps, order.order_no, "card closed")
    assert result.status is S.REFUNDED
    assert await followups(deps, order.order_no) == [
        ("customer_notice", f"{order.order_no}.refunded.notice"),
        ("business_callback", f"{order.order_no}.refunded.callback"),
    ]


async def test_refund_notifications_finish_or_escalate_a_refunding_order_once(
    deps: Deps, opener: NotificationOpener, wechat: Wechat, card: FakeCard
) -> None:
    done = await paid_order(deps)
    done = await refund.refund_path(deps, done.order_no, "card closed")
    for _ in range(2):  # a duplicate changes nothing
        assert (await handle_notification(deps, opener, *wechat.refund(done, "SUCCESS"))).code == "SUCCESS"
    assert (await reload(deps, done.order_no)).status is S.REFUNDED
    assert len(await followups(deps, done.order_no)) == 2

    stuck = await paid_order(deps)
    stuck = await refund.refund_path(deps, stuck.order_no, "card closed")
    assert (await handle_notification(deps, opener, *wechat.refund(stuck, "ABNORMAL"))).code == "SUCCESS"
    reviewed = await reload(deps, stuck.order_no)
    assert reviewed.status is S.MANUAL_REVIEW and "ABNORMAL" in reviewed.failure_reason
    # A late REFUND.SUCCESS for it still settles it (the money did come back).
    assert (await handle_notification(deps, opener, *wechat.refund(stuck, "SUCCESS"))).code == "SUCCESS"
    assert (await reload(deps, stuck.order_no)).status is S.REFUNDED


async def test_settle_refund_queries_wechat_and_applies_its_answer(
    deps: Deps, payments: FakePayments
) -> None:
    order = await paid_order(deps)
    await refund.refund_path(deps, order.order_no, "card closed")
    assert (await refund.settle_refund(deps, order.order_no)).status is S.REFUNDING  # PROCESSING
    payments.script("QueryRefund", Done(RefundResult(f"{order.order_no}-R1", "r1", "SUCCESS"), 1.0))
    assert (await refund.settle_refund(deps, order.order_no)).status is S.REFUNDED


async def test_a_credited_order_is_never_refunded(
    deps: Deps, db: Database, card: FakeCard, payments: FakePayments
) -> None:
    order = await paid_order(deps)
    await confirm.credit(deps, order.order_no)
    result = await refund.refund_path(deps, order.order_no, "too late")
    assert result.status is S.CREDITED
    assert "VoidRecharge" not in card.methods() and payments.of("CreateRefund") == []
    async with db.session(readonly=True) as session:
        rows = (await session.execute(select(outbox.c.event_id))).scalars().all()
    assert len(rows) == 2
