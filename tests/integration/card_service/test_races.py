"""Many concurrent callers on one order or one card (service layer, on a real SQLite file and on
a real PostgreSQL database)."""

from __future__ import annotations

import asyncio
import random

import pytest

from card_service.domain import commands
from card_service.domain.journal import JournalKind
from card_service.domain.recharges import PreRecharge, PreRechargeStatus
from card_service.domain.rules import BonusTier, Limits
from card_service.service_layer import cards, consumes, recharges, rules
from card_service.service_layer.context import CardContext
from card_service.service_layer.locks import card_key, order_key
from rc_common.errors import Refused
from tests.integration.card_service.conftest import MERCHANT, open_card
from tests.waiting import eventually

CARD = "6200000000000001"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def queued(ctx: CardContext, key: str) -> int:
    """How many callers wait for ``key`` (the locks keep their queues to themselves)."""
    return len(ctx.locks._held.get(key) or ())


async def principal_credits(ctx: CardContext, order_no: str) -> int:
    page = await cards.list_journal(ctx, CARD, 0, 500)
    return sum(
        1 for e in page.entries if e.kind is JournalKind.RECHARGE_PRINCIPAL and e.business_key == order_no
    )


@pytest.mark.parametrize("seed", range(4))
async def test_confirm_and_void_racing_on_one_order_have_exactly_one_winner(
    ctx: CardContext, seed: int
) -> None:
    await open_card(ctx, CARD)
    await rules.set_recharge_rule(ctx, commands.SetRechargeRule(MERCHANT, (BonusTier(1_000, 300),), Limits()))
    order_no = f"R{seed}"
    await recharges.pre_recharge(ctx, commands.StartPreRecharge(order_no, CARD, 1_000, MERCHANT))
    calls = [recharges.confirm_recharge(ctx, commands.ConfirmRecharge(order_no)) for _ in range(12)]
    calls += [recharges.void_recharge(ctx, commands.VoidRecharge(order_no, "race")) for _ in range(12)]
    random.Random(seed).shuffle(calls)
    answers: list[PreRecharge] = await asyncio.gather(*calls)

    winner = answers[0].status
    assert winner in (PreRechargeStatus.SUCCEEDED, PreRechargeStatus.VOIDED)
    assert {answer.status for answer in answers} == {winner}, "every caller sees the one final state"
    credited = winner is PreRechargeStatus.SUCCEEDED
    assert await principal_credits(ctx, order_no) == int(credited)
    view = await cards.get_card(ctx, CARD)
    assert (view.card.balance_fen, view.pending_recharge_fen) == ((1_300 if credited else 0), 0)


async def test_a_void_that_returns_voided_means_a_confirm_waiting_on_the_lock_never_credits(
    ctx: CardContext,
) -> None:
    await open_card(ctx, CARD)
    await recharges.pre_recharge(ctx, commands.StartPreRecharge("R1", CARD, 1_000, MERCHANT))
    async with ctx.locks.hold(card_key(CARD)):  # someone holds the card's row lock
        void = asyncio.create_task(recharges.void_recharge(ctx, commands.VoidRecharge("R1", "timeout")))
        await eventually(lambda: queued(ctx, card_key(CARD)) == 1, what="the void queueing for the card")
        confirm = asyncio.create_task(recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R1")))
        await eventually(lambda: queued(ctx, order_key("R1")) == 1, what="the confirm queueing next")
        assert not void.done() and not confirm.done(), "both queue behind the lock holder"
    voided, late = await void, await confirm
    assert (voided.status, late.status) == (PreRechargeStatus.VOIDED, PreRechargeStatus.VOIDED)
    assert await principal_credits(ctx, "R1") == 0


async def test_a_late_pre_recharge_racing_a_void_of_its_order_never_outlives_the_tombstone(
    ctx: CardContext,
) -> None:
    await open_card(ctx, CARD)
    for index in range(10):
        order_no = f"R{index}"
        pre = recharges.pre_recharge(ctx, commands.StartPreRecharge(order_no, CARD, 1_000, MERCHANT))
        void = recharges.void_recharge(ctx, commands.VoidRecharge(order_no, "closed"))
        first, second = (pre, void) if index % 2 else (void, pre)
        results = await asyncio.gather(first, second, return_exceptions=True)
        stored = await recharges.get_recharge(ctx, order_no)
        assert stored.status is PreRechargeStatus.VOIDED, results
        refusals = [r for r in results if isinstance(r, Refused)]
        assert all(r.reason == "RECHARGE_VOIDED" for r in refusals)
    assert (await cards.get_card(ctx, CARD)).pending_recharge_fen == 0


async def test_concurrent_consumes_never_drive_a_balance_negative(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    await recharges.pre_recharge(ctx, commands.StartPreRecharge("R1", CARD, 10_000, MERCHANT))
    await recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R1"))
    spends = [consumes.consume(ctx, commands.Consume(f"C{i}", CARD, 700, MERCHANT)) for i in range(30)]
    results = await asyncio.gather(*spends, return_exceptions=True)
    done = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, Refused)]
    assert len(done) == 14 and len(refused) == 16, results  # 14 * 700 = 9_800 <= 10_000
    assert {r.reason for r in refused} == {"INSUFFICIENT_BALANCE"}
    assert sorted(c.balance_after_fen for c in done) == [10_000 - 700 * n for n in range(14, 0, -1)]
    page = await cards.list_journal(ctx, CARD, 0, 500)
    assert (
        (await cards.get_card(ctx, CARD)).card.balance_fen == sum(e.amount_fen for e in page.entries) == 200
    )
