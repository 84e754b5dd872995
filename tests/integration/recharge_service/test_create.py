"""CreateRechargeOrder with a real database and fake card system / WeChat Pay."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from rc_common.db import Database
from rc_common.errors import InvalidArgument, Refused, Unavailable
from rc_common.outcomes import Done
from recharge_service.adapters.orm import timeline_events
from recharge_service.domain.order import OrderStatus
from recharge_service.service_layer.commands import CreateRechargeOrder
from recharge_service.service_layer.create import create_recharge_order
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.ports import VOIDED, CardRecharge
from tests.integration.recharge_service.conftest import CARD_NO, reload
from tests.integration.recharge_service.fakes import FakeCard, FakePayments, refused, unknown

POS = 2


def command(key: str = "key-1", **changes: object) -> CreateRechargeOrder:
    values: dict[str, object] = {
        "card_no": CARD_NO,
        "pay_amount_fen": 100_000,
        "channel": POS,
        "idempotency_key": key,
        "payer_openid": "o-payer-1",
    }
    values.update(changes)
    return CreateRechargeOrder(**values)  # type: ignore[arg-type]


async def count_orders(deps: Deps) -> int:
    async with deps.uow(readonly=True) as uow:
        page = await uow.orders.list(page_size=1000)
    return len(page.orders)


async def test_a_new_order_is_pre_recharged_then_awaits_payment_with_bonus_and_prepay(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await create_recharge_order(command(), deps)
    assert order.status is OrderStatus.AWAITING_PAYMENT
    assert (order.pay_amount_fen, order.bonus_fen, order.credit_amount_fen) == (100_000, 2_000, 102_000)
    assert order.prepay_id == f"wx_prepay_{order.order_no}"
    assert card.methods() == ["PreRecharge"]
    prepay = payments.of("CreatePrepay")[0]
    assert prepay["out_trade_no"] == order.order_no
    assert prepay["amount_total_fen"] == 100_000
    expires = datetime.fromisoformat(prepay["time_expire"])
    assert expires.utcoffset() == timedelta(hours=8)
    assert expires == order.expires_at.replace(microsecond=0)
    assert order.expires_at - order.created_at == deps.order_expiry


async def test_the_same_key_returns_the_same_order_without_calling_out_again(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    first = await create_recharge_order(command(), deps)
    second = await create_recharge_order(command(), deps)
    assert second.order_no == first.order_no
    assert second.prepay_id == first.prepay_id
    assert len(card.calls) == 1 and len(payments.calls) == 1
    assert await count_orders(deps) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"pay_amount_fen": 100_001},
        {"card_no": "8800000000000002"},
        {"channel": 1},
        {"payer_openid": "o-other"},
    ],
)
async def test_the_same_key_with_different_parameters_is_refused(
    deps: Deps, change: dict[str, object]
) -> None:
    first = await create_recharge_order(command(), deps)
    with pytest.raises(Refused) as refusal:
        await create_recharge_order(command(**change), deps)
    assert refusal.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert refusal.value.metadata["order_no"] == first.order_no
    assert await count_orders(deps) == 1


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("card_no", {"card_no": "12345"}),
        ("card_no", {"card_no": "88000000000000a1"}),
        ("card_no", {"card_no": "1" * 33}),
        ("pay_amount_fen", {"pay_amount_fen": 0}),
        ("pay_amount_fen", {"pay_amount_fen": -100}),
        ("channel", {"channel": 0}),
        ("channel", {"channel": 9}),
        ("idempotency_key", {"idempotency_key": ""}),
        ("idempotency_key", {"idempotency_key": "k" * 65}),
        ("payer_openid", {"payer_openid": ""}),
    ],
)
async def test_bad_input_names_the_field_and_writes_nothing(
    deps: Deps, card: FakeCard, field: str, change: dict[str, object]
) -> None:
    with pytest.raises(InvalidArgument) as error:
        await create_recharge_order(command(**change), deps)
    assert error.value.field == field
    assert await count_orders(deps) == 0
    assert card.calls == []


async def test_a_refused_pre_recharge_rejects_the_order_with_the_card_systems_reason(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    card.script("PreRecharge", refused("CARD_FROZEN"))
    with pytest.raises(Refused) as refusal:
        await create_recharge_order(command(), deps)
    assert refusal.value.reason == "CARD_FROZEN"
    order_no = refusal.value.metadata["order_no"]
    order = await reload(deps, order_no)
    assert order.status is OrderStatus.REJECTED
    assert order.failure_reason == "CARD_FROZEN"
    assert payments.calls == []
    # Replaying the key gives the same refusal without asking the card system again.
    with pytest.raises(Refused) as again:
        await create_recharge_order(command(), deps)
    assert again.value.reason == "CARD_FROZEN" and again.value.metadata["order_no"] == order_no
    assert card.methods() == ["PreRecharge"]


async def test_a_pre_recharge_answered_voided_rejects_the_order(deps: Deps, card: FakeCard) -> None:
    card.script("PreRecharge", Done(CardRecharge("x", VOIDED), 1.0))
    with pytest.raises(Refused) as refusal:
        await create_recharge_order(command(), deps)
    assert refusal.value.reason == "RECHARGE_VOIDED"


async def test_an_unknown_pre_recharge_answers_unavailable_and_the_same_key_resumes(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    card.script("PreRecharge", unknown("DEADLINE_EXCEEDED"))
    with pytest.raises(Unavailable) as unavailable:
        await create_recharge_order(command(), deps)
    assert unavailable.value.reason == "PRE_RECHARGE_UNKNOWN"
    order_no = unavailable.value.metadata["order_no"]
    stored = await reload(deps, order_no)
    assert stored.status is OrderStatus.CREATED
    assert stored.attempts == 1 and "DEADLINE_EXCEEDED" in stored.last_error
    assert payments.calls == []

    resumed = await create_recharge_order(command(), deps)
    assert resumed.order_no == order_no
    assert resumed.status is OrderStatus.AWAITING_PAYMENT
    assert card.methods() == ["PreRecharge", "PreRecharge"]


async def test_an_unknown_prepay_answers_unavailable_and_the_retry_sends_the_same_prepay(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    payments.script("CreatePrepay", unknown())
    with pytest.raises(Unavailable) as unavailable:
        await create_recharge_order(command(), deps)
    assert unavailable.value.reason == "PREPAY_UNKNOWN"
    resumed = await create_recharge_order(command(), deps)
    assert resumed.status is OrderStatus.AWAITING_PAYMENT
    assert card.methods() == ["PreRecharge"]  # the recorded pre-recharge is not asked for again
    first, second = payments.of("CreatePrepay")
    assert first == second


async def test_creation_is_on_the_timeline_with_both_calls_announced_in_the_first_commit(
    deps: Deps, db: Database
) -> None:
    order = await create_recharge_order(command(), deps)
    async with db.session(readonly=True) as session:
        rows = (
            await session.execute(
                select(
                    timeline_events.c.kind,
                    timeline_events.c.from_status,
                    timeline_events.c.to_status,
                    timeline_events.c.method,
                    timeline_events.c.outcome,
                )
                .where(timeline_events.c.order_no == order.order_no)
                .order_by(timeline_events.c.id)
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("transition", "", "CREATED", "", ""),
        ("remote_call", "", "", "/card.v1.CardSystem/PreRecharge", "sent"),
        ("remote_call", "", "", "/wechatpay.v1.PaymentGateway/CreatePrepay", "sent"),
        ("transition", "CREATED", "AWAITING_PAYMENT", "", ""),
    ]


async def test_a_prepay_announced_but_never_sent_is_closed_on_the_timeline(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    card.script("PreRecharge", refused("CARD_FROZEN"))
    with pytest.raises(Refused):
        await create_recharge_order(command(), deps)
    assert payments.of("CreatePrepay") == []
    async with deps.uow(readonly=True) as uow:
        page = await uow.orders.list()
        entries = await uow.timeline.for_order(page.orders[0].order_no)
    prepay = [e.outcome for e in entries if e.method.endswith("/CreatePrepay")]
    assert prepay == ["sent", "not_sent"]  # its sent row does not stand alone
