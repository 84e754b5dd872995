"""Four eyes on refunds (issue 17), on a real SQLite database with fake card and WeChat ports: a
refund above the threshold waits as an approval and touches nothing; only another operator's
approval runs it, through the same fenced path; a rejection runs nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rc_common.errors import InvalidArgument, NotFound, PermissionDenied, Refused, Unavailable
from rc_common.outcomes import Done
from recharge_service.domain.approval import ApprovalStatus
from recharge_service.domain.order import OrderStatus
from recharge_service.service_layer.approve import Decided, decide_approval
from recharge_service.service_layer.commands import DecideApproval, ResolveAction, ResolveAnomaly
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.four_eyes import APPROVAL_REQUIRED, FourEyes, list_approvals
from recharge_service.service_layer.ports import SUCCEEDED, VOIDED, CardRecharge
from recharge_service.service_layer.resolve import Resolution, resolve_anomaly
from tests.integration.recharge_service.conftest import reload
from tests.integration.recharge_service.fakes import FakeCard, FakePayments, unknown
from tests.integration.recharge_service.sentinel_support import (
    credit_unknown_order,
    lease_of,
    policy,
    timeline,
)

S = OrderStatus
A = ResolveAction
#: ¥500: the orders of these tests pay ¥1,000 (conftest.new_order), above it.
FOUR_EYES = FourEyes(50_000)


async def ask_refund(
    deps: Deps, order_no: str, operator: str = "alice", reason: str = "customer asked"
) -> Resolution:
    return await resolve_anomaly(
        deps, policy(), ResolveAnomaly(order_no, int(A.REFUND), operator, reason), FOUR_EYES
    )


async def decide(
    deps: Deps, approval_id: str, approve: bool, by: str, reason: str = "checked the ticket"
) -> Decided:
    return await decide_approval(deps, policy(), DecideApproval(approval_id, approve, by, reason))


async def test_a_refund_above_the_threshold_waits_as_an_approval_and_touches_nothing(
    timed: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await credit_unknown_order(timed, card)
    calls_before = list(card.methods())

    asked = await ask_refund(timed, order.order_no)

    assert asked.outcome == APPROVAL_REQUIRED and asked.approval is not None
    approval = asked.approval
    assert (approval.status, approval.requested_by, approval.request_reason) == (
        ApprovalStatus.PENDING, "alice", "customer asked",
    )  # fmt: skip
    assert (approval.order_no, approval.action, approval.amount_fen) == (order.order_no, "REFUND", 100_000)
    assert card.methods() == calls_before  # nothing voided, nothing even asked
    assert payments.of("CreateRefund") == []
    after = await reload(timed, order.order_no)
    assert (after.status, after.version) == (S.CREDIT_UNKNOWN, order.version)
    assert await lease_of(timed, order.order_no) is None
    (row,) = await timeline(timed, order.order_no, "operator_action")
    assert (row.actor, row.method, row.outcome) == ("alice", "REFUND", "approval_requested")
    assert approval.approval_id in row.detail and "customer asked" in row.detail

    again = await ask_refund(timed, order.order_no, operator="bob", reason="me too")  # idempotent
    assert again.approval is not None and again.approval.approval_id == approval.approval_id
    assert again.approval.requested_by == "alice"
    assert len(await timeline(timed, order.order_no, "operator_action")) == 1


async def test_the_operator_who_asked_cannot_approve_it(timed: Deps, card: FakeCard) -> None:
    order = await credit_unknown_order(timed, card)
    approval = (await ask_refund(timed, order.order_no)).approval
    assert approval is not None
    for approve in (True, False):
        with pytest.raises(PermissionDenied) as denied:
            await decide(timed, approval.approval_id, approve, "alice")
        assert denied.value.reason == "SAME_OPERATOR"
    with pytest.raises(PermissionDenied) as nobody:
        await decide(timed, approval.approval_id, True, " ")
    assert nobody.value.reason == "OPERATOR_REQUIRED"
    assert "VoidRecharge" not in card.methods()
    assert (await list_approvals(timed)).approvals[0].status is ApprovalStatus.PENDING


async def test_an_approval_runs_the_refund_through_the_fences_as_the_approver(
    timed: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await credit_unknown_order(timed, card)
    approval = (await ask_refund(timed, order.order_no)).approval
    assert approval is not None
    payments.refund_status = "SUCCESS"

    decided = await decide(timed, approval.approval_id, True, "carol", "ticket 7 checked")

    assert decided.order.status is S.REFUNDED
    stored = decided.approval
    assert (stored.status, stored.decided_by, stored.decision_reason) == (
        ApprovalStatus.APPROVED, "carol", "ticket 7 checked",
    )  # fmt: skip
    assert stored.outcome == f"voided; refund {order.order_no}-R1: REFUNDED"
    assert card.records[order.order_no].status == VOIDED
    methods = card.methods()
    assert "VoidRecharge" in methods
    assert [c["out_refund_no"] for c in payments.of("CreateRefund")] == [f"{order.order_no}-R1"]
    actions = await timeline(timed, order.order_no, "operator_action")
    assert [(e.actor, e.outcome) for e in actions] == [
        ("alice", "approval_requested"),
        ("carol", "requested"),
        ("carol", "done"),
        ("carol", "approval_approved"),
    ]
    assert "asked by alice" in actions[1].detail and "ticket 7 checked" in actions[1].detail
    to_refunding = [
        e for e in await timeline(timed, order.order_no, "transition") if e.to_status == S.REFUNDING
    ]
    assert [(e.actor, e.detail) for e in to_refunding] == [("carol", f"voided; refund {order.order_no}-R1")]
    assert await lease_of(timed, order.order_no) is None

    replay = await decide(timed, approval.approval_id, True, "carol", "again")  # the stored result
    assert replay.approval.outcome == stored.outcome and replay.approval.decision_reason == "ticket 7 checked"
    for approve, by in ((False, "carol"), (True, "dave")):
        with pytest.raises(Refused) as decided_already:
            await decide(timed, approval.approval_id, approve, by)
        assert decided_already.value.reason == "APPROVAL_DECIDED"
    assert len(payments.of("CreateRefund")) == 1


async def test_a_rejection_runs_nothing(timed: Deps, card: FakeCard, payments: FakePayments) -> None:
    order = await credit_unknown_order(timed, card)
    approval = (await ask_refund(timed, order.order_no)).approval
    assert approval is not None

    decided = await decide(timed, approval.approval_id, False, "carol", "the card was credited by hand")

    assert decided.approval.status is ApprovalStatus.REJECTED and decided.approval.outcome == ""
    assert "VoidRecharge" not in card.methods() and payments.of("CreateRefund") == []
    assert (await reload(timed, order.order_no)).version == order.version
    actions = await timeline(timed, order.order_no, "operator_action")
    assert [(e.actor, e.outcome) for e in actions] == [
        ("alice", "approval_requested"),
        ("carol", "approval_rejected"),
    ]
    with pytest.raises(Refused) as decided_already:
        await decide(timed, approval.approval_id, True, "dave")
    assert decided_already.value.reason == "APPROVAL_DECIDED"
    again = await ask_refund(timed, order.order_no)  # a new request after a rejection: a new approval
    assert again.approval is not None and again.approval.approval_id != approval.approval_id


async def test_a_refund_at_or_below_the_threshold_runs_at_once(
    timed: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await credit_unknown_order(timed, card)
    done = await resolve_anomaly(
        timed, policy(), ResolveAnomaly(order.order_no, int(A.REFUND), "alice", "small"), FourEyes(100_000)
    )
    assert done.approval is None and done.order.status is S.REFUNDING
    assert card.records[order.order_no].status == VOIDED and len(payments.of("CreateRefund")) == 1
    assert (await list_approvals(timed)).approvals == []


async def test_a_refund_the_rules_refuse_is_refused_at_once_without_an_approval(
    timed: Deps, card: FakeCard
) -> None:
    order = await credit_unknown_order(timed, card)
    await resolve_anomaly(timed, policy(), ResolveAnomaly(order.order_no, int(A.RETRY_NOW), "bob", "look"))
    assert (await reload(timed, order.order_no)).status is S.CREDITED
    with pytest.raises(Refused) as refused:
        await ask_refund(timed, order.order_no)
    assert refused.value.reason == "CARD_CREDITED"
    assert (await list_approvals(timed)).approvals == []


async def test_an_approved_refund_the_card_refuses_is_approved_with_the_refusal_as_outcome(
    timed: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await credit_unknown_order(timed, card)
    approval = (await ask_refund(timed, order.order_no)).approval
    assert approval is not None
    card.script("VoidRecharge", Done(CardRecharge(order.order_no, SUCCEEDED), 1.0))  # the credit landed

    decided = await decide(timed, approval.approval_id, True, "carol")

    assert decided.approval.status is ApprovalStatus.APPROVED
    assert decided.approval.outcome.startswith("refused CARD_CREDITED: ")
    assert decided.order.status is S.CREDITED and payments.of("CreateRefund") == []


async def test_an_approval_whose_void_is_unknown_stays_pending_and_refunds_nothing(
    timed: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await credit_unknown_order(timed, card)
    approval = (await ask_refund(timed, order.order_no)).approval
    assert approval is not None
    card.script("VoidRecharge", unknown())

    with pytest.raises(Unavailable) as unanswered:
        await decide(timed, approval.approval_id, True, "carol")

    assert unanswered.value.reason == "CARD_UNAVAILABLE"
    assert payments.of("CreateRefund") == []
    (still,) = (await list_approvals(timed)).approvals
    assert still.status is ApprovalStatus.PENDING and still.decided_by == ""
    payments.refund_status = "SUCCESS"
    decided = await decide(timed, approval.approval_id, True, "carol")  # the card answers again
    assert decided.order.status is S.REFUNDED


async def test_deciding_an_order_someone_holds_is_busy_and_decides_nothing(
    timed: Deps, card: FakeCard
) -> None:
    order = await credit_unknown_order(timed, card)
    approval = (await ask_refund(timed, order.order_no)).approval
    assert approval is not None
    now = timed.clock()
    async with timed.uow() as uow:
        assert await uow.leases.claim_one(order.order_no, "node-b", now, now + timedelta(seconds=60))
        await uow.commit()
    for approve in (True, False):
        with pytest.raises(Unavailable) as busy:
            await decide(timed, approval.approval_id, approve, "carol")
        assert busy.value.reason == "ORDER_BUSY"
    assert (await list_approvals(timed)).approvals[0].status is ApprovalStatus.PENDING
    assert "VoidRecharge" not in card.methods()


async def test_approvals_are_listed_newest_first_by_status_and_merchant_in_pages(
    timed: Deps, card: FakeCard
) -> None:
    ids = []
    for _ in range(3):
        order = await credit_unknown_order(timed, card)
        timed.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
        approval = (await ask_refund(timed, order.order_no)).approval
        assert approval is not None
        ids.append(approval.approval_id)
    await decide(timed, ids[0], False, "carol")

    first = await list_approvals(timed, page_size=1)
    second = await list_approvals(timed, page_size=1, page_token=first.next_page_token)
    assert [a.approval_id for a in [*first.approvals, *second.approvals]] == [ids[2], ids[1]]
    assert second.next_page_token == ""
    everyone = await list_approvals(timed, statuses=["PENDING", "REJECTED"])
    assert [a.approval_id for a in everyone.approvals] == [ids[2], ids[1], ids[0]]
    assert (await list_approvals(timed, merchant_id="shop-b")).approvals == []
    with pytest.raises(InvalidArgument) as bad:
        await list_approvals(timed, statuses=["MAYBE"])
    assert bad.value.field == "statuses"
    with pytest.raises(InvalidArgument) as forged:
        await list_approvals(timed, page_token="not-a-token")
    assert forged.value.field == "page.page_token"
    with pytest.raises(NotFound):
        await decide(timed, "A0000", True, "carol")
    with pytest.raises(InvalidArgument) as no_reason:
        await decide(timed, ids[1], True, "carol", reason="  ")
    assert no_reason.value.field == "reason"
