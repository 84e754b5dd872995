"""InspectOrder and FindOrders (issue 17) on a real SQLite database with fake card and WeChat ports:
the views of the other systems, previews that say what ResolveAnomaly then does, nothing written."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rc_common.errors import InvalidArgument, NotFound, Refused
from rc_common.outcomes import Done
from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.service_layer import settle
from recharge_service.service_layer.commands import ResolveAction, ResolveAnomaly
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.four_eyes import FourEyes
from recharge_service.service_layer.inspection import Inspection, Lookups, inspect_order
from recharge_service.service_layer.ports import RECHARGING, SUCCEEDED, VOIDED, CardRecharge
from recharge_service.service_layer.queries import find_orders
from recharge_service.service_layer.resolve import resolve_anomaly
from tests.integration.recharge_service.conftest import new_order, reload
from tests.integration.recharge_service.fakes import FakeCard, FakePayments, unknown
from tests.integration.recharge_service.sentinel_support import (
    HOLD,
    credit_unknown_order,
    lease_of,
    payment_of,
    policy,
    timeline,
)

S = OrderStatus
A = ResolveAction
FOUR_EYES = FourEyes(50_000)


async def inspect(deps: Deps, order_no: str, merchant_id: str = "") -> Inspection:
    lookups = Lookups(deps.card, deps.payments)
    return await inspect_order(deps, lookups, FOUR_EYES, HOLD, order_no, merchant_id)


def preview(found: Inspection, action: ResolveAction) -> tuple[bool, str, bool]:
    (shown,) = [p for p in found.actions if p.action is action]
    return shown.allowed, shown.refused_reason, shown.needs_approval


async def in_review(deps: Deps, card: FakeCard, payments: FakePayments) -> RechargeOrder:
    order = await credit_unknown_order(deps, card)
    await settle.send_to_manual_review(deps, order.order_no, "test: nobody could decide")
    payments.script("QueryOrder", Done(payment_of(order), 1.0))
    return await reload(deps, order.order_no)


async def test_an_order_in_review_is_shown_as_each_system_sees_it_and_nothing_is_written(
    timed: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await in_review(timed, card, payments)
    rows_before = await timeline(timed, order.order_no)
    calls_before = len(card.calls)

    found = await inspect(timed, order.order_no, "shop-a")

    assert found.order.order_no == order.order_no and found.hold == HOLD
    assert (found.card.outcome, found.card.state, found.card.amount_fen) == ("done", RECHARGING, 102_000)
    assert (found.trade.outcome, found.trade.state, found.trade.amount_fen) == ("done", "SUCCESS", 100_000)
    assert order.transaction_id in found.trade.detail
    assert found.refund.outcome == ""  # no refund asked for yet
    assert preview(found, A.RETRY_NOW) == (True, "", False)
    assert preview(found, A.REFUND) == (True, "", True)  # ¥1,000 > ¥500: a second operator decides
    assert preview(found, A.CONFIRM_CREDIT) == (True, "", False)
    assert found.pending_approval is None
    # read-only: no row, no lease, no version change, no call that changes anything
    assert await timeline(timed, order.order_no) == rows_before
    assert await lease_of(timed, order.order_no) is None
    assert (await reload(timed, order.order_no)).version == order.version
    assert [m for m, _ in card.calls[calls_before:]] == ["GetRecharge"]

    asked = await resolve_anomaly(
        timed, policy(), ResolveAnomaly(order.order_no, int(A.REFUND), "alice", "customer"), FOUR_EYES
    )
    assert asked.approval is not None
    again = await inspect(timed, order.order_no)
    assert (
        again.pending_approval is not None
        and again.pending_approval.approval_id == asked.approval.approval_id
    )
    with pytest.raises(NotFound):
        await inspect(timed, order.order_no, "shop-b")


async def test_a_card_system_that_does_not_answer_is_an_unknown_view_not_a_failure(
    timed: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await in_review(timed, card, payments)
    card.script("GetRecharge", unknown("DEADLINE_EXCEEDED"))
    found = await inspect(timed, order.order_no)
    assert (found.card.outcome, found.card.state) == ("unknown", "")
    assert "DEADLINE_EXCEEDED" in found.card.detail
    assert found.trade.outcome == "done"
    assert preview(found, A.CONFIRM_CREDIT)[0] is True


@pytest.mark.parametrize("card_state", [RECHARGING, SUCCEEDED, VOIDED])
async def test_each_preview_says_what_resolve_then_does(
    timed: Deps, card: FakeCard, payments: FakePayments, card_state: str
) -> None:
    """The previews and the actions share their rules: an action the preview allows is not refused,
    and one it refuses is refused with the same reason (each run on its own order)."""
    for action in (A.REFUND, A.CONFIRM_CREDIT):
        order = await in_review(timed, card, payments)
        card.records[order.order_no] = CardRecharge(order.order_no, card_state)
        allowed, reason, _ = preview(await inspect(timed, order.order_no), action)
        command = ResolveAnomaly(order.order_no, int(action), "alice", "as previewed")
        if allowed:
            await resolve_anomaly(timed, policy(), command)  # no four eyes here: the action itself
        else:
            with pytest.raises(Refused) as refused:
                await resolve_anomaly(timed, policy(), command)
            assert refused.value.reason == reason


async def test_final_and_unpaid_orders_preview_why_not(
    timed: Deps, card: FakeCard, payments: FakePayments
) -> None:
    unpaid = await new_order(timed)
    found = await inspect(timed, unpaid.order_no)
    assert found.trade.state == "NOTPAY"
    assert preview(found, A.RETRY_NOW) == (True, "", False)  # the sentinel's step: ask WeChat
    assert preview(found, A.REFUND) == (False, "ORDER_NOT_PAID", False)
    assert preview(found, A.CONFIRM_CREDIT) == (False, "ORDER_NOT_PAID", False)

    credited = await credit_unknown_order(timed, card)
    await settle.mark_credited(timed, credited.order_no, "test")
    found = await inspect(timed, credited.order_no)
    assert preview(found, A.RETRY_NOW) == (False, "NOT_AN_ANOMALY", False)
    assert preview(found, A.REFUND) == (False, "CARD_CREDITED", False)
    assert preview(found, A.CONFIRM_CREDIT) == (False, "NOT_AN_ANOMALY", False)
    with pytest.raises(InvalidArgument) as bad:
        await inspect(timed, "")
    assert bad.value.field == "order_no"


async def test_orders_are_found_by_order_number_card_number_or_transaction_id_newest_first(
    timed: Deps, card: FakeCard
) -> None:
    orders = []
    for _ in range(3):
        orders.append(await credit_unknown_order(timed, card))
        timed.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    newest_first = [o.order_no for o in reversed(orders)]

    assert [o.order_no for o in await find_orders(timed, orders[1].order_no)] == [orders[1].order_no]
    assert [o.order_no for o in await find_orders(timed, orders[0].card_no)] == newest_first
    assert [o.order_no for o in await find_orders(timed, f" {orders[2].transaction_id} ")] == [
        newest_first[0]
    ]
    assert [o.order_no for o in await find_orders(timed, orders[0].card_no, limit=2)] == newest_first[:2]
    assert await find_orders(timed, orders[0].card_no, merchant_id="shop-b") == []
    assert await find_orders(timed, "R000000") == []
    for query, limit, field in (("", 0, "query"), ("  ", 0, "query"), (orders[0].card_no, -1, "limit")):
        with pytest.raises(InvalidArgument) as bad:
            await find_orders(timed, query, limit=limit)
        assert bad.value.field == field
