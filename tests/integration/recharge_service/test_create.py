"""CreateRechargeOrder with a real database and fake card system / WeChat Pay."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from rc_common.db import Database
from rc_common.errors import InvalidArgument, NotFound, Refused, Unavailable
from rc_common.outcomes import Done
from recharge_service.adapters.orm import outbox, recharge_orders, timeline_events
from recharge_service.domain.merchant import MerchantConfig, WechatAccount, WechatMode
from recharge_service.domain.order import Channel, OrderStatus
from recharge_service.service_layer.commands import CreateRechargeOrder
from recharge_service.service_layer.create import create_recharge_order
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.ports import VOIDED, CardRecharge
from tests.integration.recharge_service.conftest import CARD_NO, reload
from tests.integration.recharge_service.fakes import (
    MERCHANT,
    FakeCard,
    FakePayments,
    MemoryMerchants,
    merchant,
    refused,
    unknown,
)

POS = 2


def command(key: str = "key-1", **changes: object) -> CreateRechargeOrder:
    values: dict[str, object] = {
        "card_no": CARD_NO,
        "pay_amount_fen": 100_000,
        "channel": POS,
        "idempotency_key": key,
        "payer_openid": "o-payer-1",
        "merchant_id": MERCHANT,
    }
    values.update(changes)
    return CreateRechargeOrder(**values)  # type: ignore[arg-type]


async def count_orders(deps: Deps, merchant_id: str = MERCHANT) -> int:
    async with deps.uow(readonly=True) as uow:
        page = await uow.orders.list(merchant_id=merchant_id, page_size=1000)
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
    merchant = await deps.merchants.current(MERCHANT)
    assert merchant is not None
    assert order.expires_at - order.created_at == merchant.order_expiry
    assert (order.merchant_id, order.merchant_version) == (MERCHANT, merchant.version)


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


async def rows_written(db: Database) -> int:
    """Every order, timeline row and outbox row in the database, whoever they belong to."""
    async with db.session(readonly=True) as session:
        counts = [
            (await session.execute(select(func.count()).select_from(table))).scalar_one()
            for table in (recharge_orders, timeline_events, outbox)
        ]
    return sum(counts)


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("merchant_id", {"merchant_id": ""}),
        ("merchant_id", {"merchant_id": "shop a"}),
        ("merchant_id", {"merchant_id": "m" * 33}),
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
    deps: Deps, db: Database, card: FakeCard, field: str, change: dict[str, object]
) -> None:
    with pytest.raises(InvalidArgument) as error:
        await create_recharge_order(command(**change), deps)
    assert error.value.field == field
    assert await rows_written(db) == 0
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
        page = await uow.orders.list(merchant_id=MERCHANT)
        entries = await uow.timeline.for_order(page.orders[0].order_no)
    prepay = [e.outcome for e in entries if e.method.endswith("/CreatePrepay")]
    assert prepay == ["sent", "not_sent"]  # its sent row does not stand alone


async def test_another_merchants_card_is_refused_with_the_card_reason_and_nothing_is_prepaid(
    deps: Deps, card: FakeCard, payments: FakePayments, merchants: MemoryMerchants
) -> None:
    merchants.add(merchant("shop-b"))
    card.owners[CARD_NO] = "shop-b"
    with pytest.raises(Refused) as refusal:
        await create_recharge_order(command(), deps)
    assert refusal.value.reason == "CARD_NOT_FOUND"
    order = await reload(deps, refusal.value.metadata["order_no"])
    assert (order.status, order.failure_reason) == (OrderStatus.REJECTED, "CARD_NOT_FOUND")
    assert card.merchants[order.order_no] == MERCHANT  # asked for shop-a, whose card it is not
    assert order.order_no not in card.records
    assert payments.calls == []
    # The card's own merchant tops it up.
    owned = await create_recharge_order(command(merchant_id="shop-b"), deps)
    assert owned.status is OrderStatus.AWAITING_PAYMENT


async def test_an_unknown_merchant_is_not_found_and_writes_nothing(
    deps: Deps, db: Database, card: FakeCard, payments: FakePayments
) -> None:
    with pytest.raises(NotFound):
        await create_recharge_order(command(merchant_id="shop-z"), deps)
    assert await rows_written(db) == 0
    assert card.calls == [] and payments.calls == []


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        (merchant(disabled=True), "MERCHANT_DISABLED"),
        (merchant(channels=frozenset({Channel.OFFICIAL_ACCOUNT, Channel.THIRD_PARTY})), "CHANNEL_DISABLED"),
    ],
    ids=["disabled merchant", "channel not sold through"],
)
async def test_a_disabled_merchant_or_channel_is_refused_and_writes_nothing(
    deps: Deps,
    db: Database,
    card: FakeCard,
    payments: FakePayments,
    merchants: MemoryMerchants,
    config: MerchantConfig,
    reason: str,
) -> None:
    merchants.add(config)
    with pytest.raises(Refused) as refusal:
        await create_recharge_order(command(channel=POS), deps)
    assert refusal.value.reason == reason
    assert await rows_written(db) == 0
    assert card.calls == [] and payments.calls == []


async def test_the_same_key_under_two_merchants_makes_two_orders(
    deps: Deps, card: FakeCard, merchants: MemoryMerchants
) -> None:
    merchants.add(merchant("shop-b"))
    mine = await create_recharge_order(command("shared-key"), deps)
    theirs = await create_recharge_order(command("shared-key", merchant_id="shop-b"), deps)
    assert mine.order_no != theirs.order_no
    assert (mine.merchant_id, theirs.merchant_id) == (MERCHANT, "shop-b")
    assert card.merchants == {mine.order_no: MERCHANT, theirs.order_no: "shop-b"}
    assert await count_orders(deps, MERCHANT) == 1
    assert await count_orders(deps, "shop-b") == 1
    # Each merchant's replay still finds its own order.
    again = await create_recharge_order(command("shared-key", merchant_id="shop-b"), deps)
    assert again.order_no == theirs.order_no


async def test_the_prepay_is_sent_for_the_orders_merchants_wechat_account(
    deps: Deps, payments: FakePayments, merchants: MemoryMerchants
) -> None:
    direct = WechatAccount(WechatMode.DIRECT, "1230000109", "wx2222222222222222", "/keys/shop-b")
    shop_b = merchants.add(merchant("shop-b", wechat=direct))
    shop_a = await merchants.current(MERCHANT)
    assert shop_a is not None and shop_a.wechat != direct
    mine = await create_recharge_order(command("k-a"), deps)
    theirs = await create_recharge_order(command("k-b", merchant_id="shop-b"), deps)
    accounts = {prepay["out_trade_no"]: prepay["account"] for prepay in payments.of("CreatePrepay")}
    assert accounts == {mine.order_no: shop_a.wechat, theirs.order_no: shop_b.wechat}


async def test_an_order_keeps_the_merchant_version_it_was_created_with(
    deps: Deps, payments: FakePayments, merchants: MemoryMerchants
) -> None:
    first = await merchants.current(MERCHANT)
    assert first is not None
    payments.script("CreatePrepay", unknown())
    with pytest.raises(Unavailable):
        await create_recharge_order(command("k-old"), deps)
    second = merchants.add(
        replace(
            first,
            order_expiry=timedelta(minutes=5),
            wechat=WechatAccount(WechatMode.PARTNER, "1900000299", "wx3333333333333333"),
        )
    )
    assert second.version == first.version + 1
    # The retry resumes the order under its first version: same window, same account.
    resumed = await create_recharge_order(command("k-old"), deps)
    assert resumed.status is OrderStatus.AWAITING_PAYMENT
    assert resumed.merchant_version == first.version
    assert resumed.expires_at - resumed.created_at == first.order_expiry
    sent, resent = payments.of("CreatePrepay")
    assert sent["account"] == resent["account"] == first.wechat
    assert datetime.fromisoformat(resent["time_expire"]) == resumed.expires_at.replace(microsecond=0)
    # A new order gets the new version.
    fresh = await create_recharge_order(command("k-new"), deps)
    assert fresh.merchant_version == second.version
    assert fresh.expires_at - fresh.created_at == timedelta(minutes=5)
    assert payments.of("CreatePrepay")[-1]["account"] == second.wechat
