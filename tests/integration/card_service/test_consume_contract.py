"""Consume and reverse through the service layer; cards and the journal's paging."""

from __future__ import annotations

import pytest

from card_service.domain import commands
from card_service.domain.consumptions import ConsumptionStatus
from card_service.domain.journal import JournalKind
from card_service.service_layer import cards, consumes, recharges
from card_service.service_layer.context import CardContext
from rc_common.errors import InvalidArgument, NotFound, Refused
from tests.integration.card_service.conftest import MERCHANT, open_card

CARD = "6200000000000001"


async def fund(ctx: CardContext, amount: int, order_no: str = "R0", card_no: str = CARD) -> None:
    await recharges.pre_recharge(ctx, commands.StartPreRecharge(order_no, card_no, amount, MERCHANT))
    await recharges.confirm_recharge(ctx, commands.ConfirmRecharge(order_no))


async def test_consume_is_idempotent_by_request_id(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    await fund(ctx, 10_000)
    first = await consumes.consume(ctx, commands.Consume("C1", CARD, 3_000, MERCHANT))
    again = await consumes.consume(ctx, commands.Consume("C1", CARD, 3_000, MERCHANT))
    assert (first.balance_after_fen, again.balance_after_fen, again.status) == (
        7_000,
        7_000,
        ConsumptionStatus.COMPLETED,
    )
    assert (await cards.get_card(ctx, CARD)).card.balance_fen == 7_000
    with pytest.raises(Refused) as conflict:
        await consumes.consume(ctx, commands.Consume("C1", CARD, 3_001, MERCHANT))
    assert conflict.value.reason == "REQUEST_ID_CONFLICT"


async def test_consume_refuses_overdraft_unknown_and_inactive_cards(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    await fund(ctx, 1_000)
    reasons = []
    for request_id, card_no, amount in (("C1", CARD, 1_001), ("C2", "6200000000000404", 1)):
        with pytest.raises(Refused) as error:
            await consumes.consume(ctx, commands.Consume(request_id, card_no, amount))
        reasons.append(error.value.reason)
    await cards.freeze_card(ctx, CARD)
    with pytest.raises(Refused) as frozen:
        await consumes.consume(ctx, commands.Consume("C3", CARD, 1))
    assert [*reasons, frozen.value.reason] == ["INSUFFICIENT_BALANCE", "CARD_NOT_FOUND", "CARD_FROZEN"]
    assert (await cards.get_card(ctx, CARD)).card.balance_fen == 1_000


async def test_reverse_consume_gives_the_amount_back_once(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    await fund(ctx, 1_000)
    await consumes.consume(ctx, commands.Consume("C1", CARD, 400))
    for _ in range(2):
        reversed_ = await consumes.reverse_consume(ctx, commands.ReverseConsume("C1"))
        assert (reversed_.status, reversed_.balance_after_fen) == (ConsumptionStatus.REVERSED, 1_000)
    page = await cards.list_journal(ctx, CARD, 0, 0)
    assert [(e.kind, e.amount_fen, e.business_key) for e in page.entries] == [
        (JournalKind.RECHARGE_PRINCIPAL, 1_000, "R0"),
        (JournalKind.CONSUME, -400, "C1"),
        (JournalKind.CONSUME_REVERSAL, 400, "C1"),
    ]
    with pytest.raises(NotFound):
        await consumes.reverse_consume(ctx, commands.ReverseConsume("C404"))


async def test_the_journal_pages_in_entry_order(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    for index in range(7):
        await fund(ctx, 100 + index, f"R{index}")
    seen, after, pages = [], 0, 0
    while True:
        page = await cards.list_journal(ctx, CARD, after, 3)
        seen += [e.business_key for e in page.entries]
        pages += 1
        if not page.next_after_entry_id:
            break
        after = page.next_after_entry_id
    assert (seen, pages) == ([f"R{i}" for i in range(7)], 3)
    with pytest.raises(InvalidArgument):
        await cards.list_journal(ctx, CARD, 0, -1)
    with pytest.raises(NotFound):
        await cards.list_journal(ctx, "6200000000000404", 0, 0)


async def test_open_card_twice_is_refused_and_unknown_cards_are_not_found(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    with pytest.raises(Refused) as exists:
        await open_card(ctx, CARD)
    assert exists.value.reason == "CARD_EXISTS"
    for use_case in (cards.get_card, cards.freeze_card, cards.unfreeze_card, cards.close_card):
        with pytest.raises(NotFound):
            await use_case(ctx, "6200000000000404")


async def test_another_merchants_card_cannot_be_seen_or_spent(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    await fund(ctx, 1_000)
    with pytest.raises(Refused) as foreign:
        await consumes.consume(ctx, commands.Consume("C1", CARD, 100, "m-other"))
    assert foreign.value.reason == "CARD_NOT_FOUND"  # the refusal a missing card gets
    with pytest.raises(NotFound):
        await cards.get_card(ctx, CARD, "m-other")
    with pytest.raises(NotFound):
        await cards.list_journal(ctx, CARD, 0, 0, "m-other")
    with pytest.raises(NotFound):
        await consumes.reverse_consume(ctx, commands.ReverseConsume("C1"))  # nothing was recorded
    mine = await cards.get_card(ctx, CARD, MERCHANT)
    assert (mine.card.merchant_id, mine.card.balance_fen) == (MERCHANT, 1_000)
    assert len((await cards.list_journal(ctx, CARD, 0, 0, MERCHANT)).entries) == 1
    spent = await consumes.consume(ctx, commands.Consume("C2", CARD, 100, MERCHANT))
    assert (spent.merchant_id, spent.balance_after_fen) == (MERCHANT, 900)
    with pytest.raises(Refused) as replay:  # the same request id naming another merchant
        await consumes.consume(ctx, commands.Consume("C2", CARD, 100, "m-other"))
    assert replay.value.reason == "REQUEST_ID_CONFLICT"
    assert (await cards.get_card(ctx, CARD)).card.balance_fen == 900
