"""Operators: ListAnomalies, and ResolveAnomaly's fenced actions, each on the timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rc_common.errors import InvalidArgument, NotFound, Refused, Unavailable
from rc_common.outcomes import Done
from recharge_service.domain.order import OrderStatus
from recharge_service.service_layer import settle
from recharge_service.service_layer.anomalies import list_anomalies
from recharge_service.service_layer.commands import ResolveAction, ResolveAnomaly
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.ports import RECHARGING, SUCCEEDED, VOIDED, CardRecharge, RefundResult
from recharge_service.service_layer.resolve import resolve_anomaly
from tests.integration.recharge_service.conftest import new_order, reload
from tests.integration.recharge_service.fakes import Clock, FakeCard, FakePayments, unknown
from tests.integration.recharge_service.sentinel_support import (
    HOLD,
    credit_unknown_order,
    lease_of,
    paid_order,
    policy,
    timeline,
)

S = OrderStatus
A = ResolveAction


def ask(
    order_no: str, action: ResolveAction, operator: str = "alice", reason: str = "ticket 42"
) -> ResolveAnomaly:
    return ResolveAnomaly(order_no, int(action), operator, reason)


async def in_review(deps: Deps, card: FakeCard) -> str:
    order = await credit_unknown_order(deps, card)
    await settle.send_to_manual_review(deps, order.order_no, "test: nobody could decide")
    return order.order_no


@pytest.mark.parametrize(
    ("operator", "reason", "action", "field"),
    [("", "why", A.REFUND, "operator"), ("bob", "  ", A.REFUND, "reason"), ("bob", "why", 0, "action")],
)
async def test_an_action_without_operator_reason_or_action_is_invalid_and_changes_nothing(
    timed: Deps, card: FakeCard, operator: str, reason: str, action: int, field: str
) -> None:
    order = await credit_unknown_order(timed, card)
    with pytest.raises(InvalidArgument) as bad:
        await resolve_anomaly(timed, policy(), ResolveAnomaly(order.order_no, action, operator, reason))
    assert bad.value.field == field
    assert await timeline(timed, order.order_no, "operator_action") == []
    assert (await reload(timed, order.order_no)).version == order.version


async def test_an_unknown_order_is_not_found(timed: Deps) -> None:
    with pytest.raises(NotFound):
        await resolve_anomaly(timed, policy(), ask("R000", A.RETRY_NOW))


async def test_retry_now_runs_the_sentinel_step_ignoring_the_hold_and_records_who_and_why(
    timed: Deps, card: FakeCard
) -> None:
    order = await credit_unknown_order(timed, card)  # changed just now: within the hold
    done = await resolve_anomaly(timed, policy(), ask(order.order_no, A.RETRY_NOW))
    assert done.order.status is S.CREDITED and done.outcome.startswith("credited")
    actions = await timeline(timed, order.order_no, "operator_action")
    assert [(e.actor, e.method, e.outcome) for e in actions] == [
        ("alice", "RETRY_NOW", "requested"),
        ("alice", "RETRY_NOW", "done"),
    ]
    assert actions[0].detail == "ticket 42"
    (visit,) = await timeline(timed, order.order_no, "sentinel_visit")
    assert visit.actor == "alice"
    credited = [e for e in await timeline(timed, order.order_no, "transition") if e.to_status == S.CREDITED]
    assert [e.actor for e in credited] == ["alice"]
    assert await lease_of(timed, order.order_no) is None


async def test_refund_voids_first_and_is_refused_when_the_card_says_credited(
    timed: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order_no = await in_review(timed, card)
    card.script("VoidRecharge", Done(CardRecharge(order_no, SUCCEEDED), 1.0))
    with pytest.raises(Refused) as refused:
        await resolve_anomaly(timed, policy(), ask(order_no, A.REFUND))
    assert refused.value.reason == "CARD_CREDITED"
    assert (await reload(timed, order_no)).status is S.CREDITED
    assert payments.of("CreateRefund") == []
    actions = await timeline(timed, order_no, "operator_action")
    assert [e.outcome for e in actions] == ["requested", "refused"] and "CARD_CREDITED" in actions[1].detail
    with pytest.raises(Refused):  # a credited order is never refunded, however asked
        await resolve_anomaly(timed, policy(), ask(order_no, A.REFUND))
    assert payments.of("CreateRefund") == []


async def test_refund_with_an_unknown_void_is_unavailable_and_refunds_nothing(
    timed: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order_no = await in_review(timed, card)
    card.script("VoidRecharge", unknown())
    with pytest.raises(Unavailable) as busy:
        await resolve_anomaly(timed, policy(), ask(order_no, A.REFUND))
    assert busy.value.reason == "CARD_UNAVAILABLE"
    assert (await reload(timed, order_no)).status is S.MANUAL_REVIEW
    assert payments.of("CreateRefund") == []


async def test_refund_from_manual_review_voids_then_refunds_with_the_order_refund_number(
    timed: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order_no = await in_review(timed, card)
    payments.refund_status = "SUCCESS"
    done = await resolve_anomaly(timed, policy(), ask(order_no, A.REFUND))
    assert done.order.status is S.REFUNDED
    assert card.methods()[-1] == "VoidRecharge" and card.records[order_no].status == VOIDED
    assert [c["out_refund_no"] for c in payments.of("CreateRefund")] == [f"{order_no}-R1"]


async def test_refund_of_an_order_whose_refund_ended_abnormal_is_refused_and_sends_nothing_new(
    timed: Deps, card: FakeCard, payments: FakePayments, clock: Clock
) -> None:
    order = await paid_order(timed)
    card.script("ConfirmRecharge", Done(CardRecharge(order.order_no, VOIDED), 1.0))
    from recharge_service.service_layer import confirm

    await confirm.credit(timed, order.order_no)  # -> void -> REFUNDING (PROCESSING)
    await settle.send_to_manual_review(timed, order.order_no, "refund ended ABNORMAL")
    payments.script("QueryRefund", Done(RefundResult(f"{order.order_no}-R1", "r1", "ABNORMAL"), 1.0))
    with pytest.raises(Refused) as refused:
        await resolve_anomaly(timed, policy(), ask(order.order_no, A.REFUND))
    assert refused.value.reason == "REFUND_ABNORMAL"
    assert len(payments.of("CreateRefund")) == 1
    with pytest.raises(Refused) as not_credited:
        await resolve_anomaly(timed, policy(), ask(order.order_no, A.CONFIRM_CREDIT))
    assert not_credited.value.reason == "CARD_NOT_CREDITED"
    assert (await reload(timed, order.order_no)).status is S.MANUAL_REVIEW


async def test_confirm_credit_marks_credited_only_when_the_card_says_succeeded(
    timed: Deps, card: FakeCard, payments: FakePayments
) -> None:
    recharging = await in_review(timed, card)
    done = await resolve_anomaly(timed, policy(), ask(recharging, A.CONFIRM_CREDIT))
    assert done.order.status is S.CREDITED
    assert card.methods()[-2:] == ["GetRecharge", "ConfirmRecharge"]

    voided = await in_review(timed, card)
    card.records[voided] = CardRecharge(voided, VOIDED)
    with pytest.raises(Refused) as refused:
        await resolve_anomaly(timed, policy(), ask(voided, A.CONFIRM_CREDIT))
    assert refused.value.reason == "CARD_NOT_CREDITED"
    assert (await reload(timed, voided)).status is S.MANUAL_REVIEW

    silent = await in_review(timed, card)
    card.script("GetRecharge", Done(CardRecharge(silent, RECHARGING), 1.0))
    card.script("ConfirmRecharge", unknown())
    with pytest.raises(Unavailable):
        await resolve_anomaly(timed, policy(), ask(silent, A.CONFIRM_CREDIT))
    assert (await reload(timed, silent)).status is S.MANUAL_REVIEW
    assert payments.of("CreateRefund") == []


async def test_an_unpaid_order_can_be_neither_refunded_nor_credited(timed: Deps) -> None:
    order = await new_order(timed)
    for action in (A.REFUND, A.CONFIRM_CREDIT):
        with pytest.raises(Refused) as refused:
            await resolve_anomaly(timed, policy(), ask(order.order_no, action))
        assert refused.value.reason == "ORDER_NOT_PAID"


async def test_an_order_leased_by_the_sentinel_is_busy_for_operators(timed: Deps, card: FakeCard) -> None:
    order = await credit_unknown_order(timed, card)
    now = timed.clock()
    async with timed.uow() as uow:
        assert await uow.leases.claim_one(order.order_no, "node-b", now, now + timedelta(seconds=60))
        await uow.commit()
    with pytest.raises(Unavailable) as busy:
        await resolve_anomaly(timed, policy(), ask(order.order_no, A.RETRY_NOW))
    assert busy.value.reason == "ORDER_BUSY"
    assert card.methods().count("GetRecharge") == 0


async def test_retry_now_on_manual_review_takes_only_what_is_already_decided(
    timed: Deps, card: FakeCard, payments: FakePayments
) -> None:
    undecided = await in_review(timed, card)
    done = await resolve_anomaly(timed, policy(), ask(undecided, A.RETRY_NOW))
    assert done.order.status is S.MANUAL_REVIEW and "RECHARGING" in done.outcome
    assert card.methods()[-1] == "GetRecharge"  # looked, did not confirm

    landed = await in_review(timed, card)
    card.records[landed] = CardRecharge(landed, SUCCEEDED)
    assert (await resolve_anomaly(timed, policy(), ask(landed, A.RETRY_NOW))).order.status is S.CREDITED


async def test_anomalies_are_listed_oldest_first_with_old_paid_orders_and_paged(
    timed: Deps, card: FakeCard, clock: Clock
) -> None:
    unknown_order = await credit_unknown_order(timed, card)
    clock.advance(timedelta(minutes=1))
    fresh_paid = await paid_order(timed)
    reviewed = await in_review(timed, card)
    await new_order(timed)  # AWAITING_PAYMENT: not an anomaly
    clock.advance(timedelta(minutes=1))
    listed = await list_anomalies(timed, hold=HOLD)
    assert [a.order.order_no for a in listed.anomalies] == [unknown_order.order_no, reviewed]
    assert listed.anomalies[1].reason == "test: nobody could decide"
    assert listed.anomalies[0].order.attempts == 1 and listed.anomalies[0].age == timedelta(minutes=2)

    clock.advance(HOLD)
    listed = await list_anomalies(timed, hold=HOLD)
    assert fresh_paid.order_no in [a.order.order_no for a in listed.anomalies]

    first = await list_anomalies(timed, hold=HOLD, page_size=2)
    rest = await list_anomalies(timed, hold=HOLD, page_size=2, page_token=first.next_page_token)
    assert len(first.anomalies) == 2 and len(rest.anomalies) == 1 and not rest.next_page_token
    assert [a.order.order_no for a in first.anomalies + rest.anomalies] == [
        a.order.order_no for a in listed.anomalies
    ]
    only = await list_anomalies(timed, hold=HOLD, statuses=[int(S.MANUAL_REVIEW)])
    assert [a.order.order_no for a in only.anomalies] == [reviewed]
    very_old = await list_anomalies(timed, hold=HOLD, min_age_seconds=int((HOLD * 2).total_seconds()))
    assert very_old.anomalies == []
    with pytest.raises(InvalidArgument):
        await list_anomalies(timed, hold=HOLD, page_token="nonsense")
