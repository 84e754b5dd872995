"""The write path: how many write transactions a call costs, and that a staged write that finds
its row changed undoes the whole unit of work (on a real SQLite file and a real PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from card_service.adapters import tables as t
from card_service.domain import commands, ledger
from card_service.domain.journal import JournalKind
from card_service.domain.recharges import PreRechargeStatus
from card_service.domain.rules import BonusTier, Limits
from card_service.service_layer import cards, recharges, rules
from card_service.service_layer.context import CardContext
from card_service.service_layer.ports import StaleWrite
from rc_common.db import Database
from rc_common.errors import NotFound, Refused
from tests.integration.card_service.conftest import MERCHANT, open_card

CARD = "6200000000000001"
OTHER_CARD = "6200000000000002"
OTHER_MERCHANT = "m-other"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_pre_recharge_and_its_confirm_are_one_write_transaction_each(
    ctx: CardContext, db: Database
) -> None:
    await open_card(ctx, CARD)
    await open_card(ctx, OTHER_CARD, OTHER_MERCHANT)  # its merchant has no rule: version 0
    await rules.set_recharge_rule(ctx, commands.SetRechargeRule(MERCHANT, (BonusTier(1_000, 300),), Limits()))
    for index in range(3):  # the first call also fills the caches: it must cost no more
        for card_no, merchant_id in ((CARD, MERCHANT), (OTHER_CARD, OTHER_MERCHANT)):
            order_no = f"R{index}-{card_no}"
            before = db.stats.units
            pre = commands.StartPreRecharge(order_no, card_no, 1_000, merchant_id)
            await recharges.pre_recharge(ctx, pre)
            pre_units = db.stats.units - before
            ctx.owners = type(ctx.owners)()  # confirm must also find the card without the cache
            before = db.stats.units
            confirmed = await recharges.confirm_recharge(ctx, commands.ConfirmRecharge(order_no, merchant_id))
            confirm_units = db.stats.units - before
            assert confirmed.status is PreRechargeStatus.SUCCEEDED
            assert (pre_units, confirm_units) == (1, 1)
    assert (await cards.get_card(ctx, CARD)).card.balance_fen == 3 * 1_300
    assert (await cards.get_card(ctx, OTHER_CARD)).card.balance_fen == 3 * 1_000


async def test_replays_and_refusals_write_nothing(ctx: CardContext, db: Database) -> None:
    await open_card(ctx, CARD)
    await recharges.pre_recharge(ctx, commands.StartPreRecharge("R1", CARD, 1_000, MERCHANT))
    await recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R1"))
    await recharges.pre_recharge(ctx, commands.StartPreRecharge("R2", CARD, 1_000, MERCHANT))
    before = (db.stats.units, db.stats.failed_units)
    await recharges.pre_recharge(ctx, commands.StartPreRecharge("R1", CARD, 1_000, MERCHANT))
    await recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R1"))
    # A missing card, and another merchant's card (as if it did not exist):
    for card_no, merchant_id in (("6200000000000404", MERCHANT), (CARD, OTHER_MERCHANT)):
        with pytest.raises(Refused):
            await recharges.pre_recharge(ctx, commands.StartPreRecharge("R3", card_no, 1_000, merchant_id))
    # Another merchant's pre-recharge: not found.
    with pytest.raises(NotFound):
        await recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R2", OTHER_MERCHANT))
    with pytest.raises(NotFound):
        await recharges.void_recharge(ctx, commands.VoidRecharge("R2", "foreign", OTHER_MERCHANT))
    assert (db.stats.units, db.stats.failed_units) == before
    assert (await recharges.get_recharge(ctx, "R2")).status is PreRechargeStatus.RECHARGING


async def test_a_stale_staged_update_rolls_back_every_write_of_its_unit(
    ctx: CardContext, db: Database
) -> None:
    await open_card(ctx, CARD)
    await recharges.pre_recharge(ctx, commands.StartPreRecharge("R1", CARD, 1_000, MERCHANT))
    async with ctx.uow(False) as uow:
        found = await uow.recharges.get_with_card("R1")
        assert found is not None
        recharge, card = found
        read_version = recharge.version
        await cards.freeze_card(ctx, CARD)  # someone else writes the card in between
        entries = ledger.confirm_recharge(card, recharge, ctx.clock())
        uow.recharges.save(recharge)  # fresh: would succeed on its own
        uow.journal.append(entries)
        uow.cards.save(card)  # stale: the card's version moved on
        units = db.stats.units
        with pytest.raises(StaleWrite):
            await uow.commit()
    assert db.stats.units == units, "the failed unit is not counted as committed"
    stored = await recharges.get_recharge(ctx, "R1")
    assert (stored.status, stored.version) == (PreRechargeStatus.RECHARGING, read_version)
    view = await cards.get_card(ctx, CARD)
    assert (view.card.balance_fen, view.pending_recharge_fen) == (0, 1_000)
    async with db.session(readonly=True) as session:
        kinds = (await session.execute(sa.select(t.journal_entries.c.kind))).scalars().all()
    assert JournalKind.RECHARGE_PRINCIPAL.value not in kinds and kinds == []


async def test_staged_writes_are_dropped_unless_committed(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    async with ctx.uow(False) as uow:
        card = await uow.cards.get(CARD)
        assert card is not None
        card.freeze(ctx.clock())
        uow.cards.save(card)
    assert (await cards.get_card(ctx, CARD)).card.status.name == "ACTIVE"


async def test_opening_a_taken_card_number_is_refused_in_one_statement(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    with pytest.raises(Refused) as refused:
        await open_card(ctx, CARD)
    assert refused.value.reason == "CARD_EXISTS"
