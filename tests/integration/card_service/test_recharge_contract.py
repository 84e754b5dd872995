"""Pre-recharge, confirm and void through the service layer on a real SQLite file."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from card_service.domain import commands
from card_service.domain.journal import JournalKind
from card_service.domain.recharges import PreRechargeStatus
from card_service.domain.rules import BonusTier, Limits
from card_service.service_layer import cards, recharges, rules
from card_service.service_layer.context import CardContext
from rc_common.errors import NotFound, Refused
from tests.integration.card_service.conftest import MERCHANT, open_card

CARD = "6200000000000001"
PROMOTION = (BonusTier(100_000, 20_000), BonusTier(50_000, 8_000), BonusTier(20_000, 2_000))
#: Another merchant's program, and a card of it.
OTHER = "m-other"
OTHER_CARD = "6200000000000009"


def pre(
    order_no: str, card_no: str = CARD, pay: int = 100_000, merchant_id: str = MERCHANT
) -> commands.StartPreRecharge:
    return commands.StartPreRecharge(order_no, card_no, pay, merchant_id)


def rule(
    tiers: tuple[BonusTier, ...], limits: Limits | None = None, merchant_id: str = MERCHANT
) -> commands.SetRechargeRule:
    return commands.SetRechargeRule(merchant_id, tiers, limits or Limits())


async def refused(awaitable: Awaitable[object]) -> str:
    with pytest.raises(Refused) as error:
        await awaitable
    return error.value.reason


async def journal(ctx: CardContext, card_no: str = CARD) -> list[tuple[JournalKind, int, int, str]]:
    page = await cards.list_journal(ctx, card_no, 0, 500)
    return [(e.kind, e.amount_fen, e.balance_after_fen, e.business_key) for e in page.entries]


async def test_pre_recharge_records_recharging_with_the_current_bonus_and_credits_nothing(
    ctx: CardContext,
) -> None:
    await open_card(ctx, CARD)
    await rules.set_recharge_rule(ctx, rule(PROMOTION))
    recharge = await recharges.pre_recharge(ctx, pre("R1", pay=60_000))
    assert (recharge.status, recharge.bonus_fen, recharge.credit_amount_fen, recharge.rule_version) == (
        PreRechargeStatus.RECHARGING,
        8_000,
        68_000,
        1,
    )
    view = await cards.get_card(ctx, CARD)
    assert (view.card.balance_fen, view.pending_recharge_fen) == (0, 68_000)


async def test_a_replay_returns_the_stored_record_whatever_its_status(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    first = await recharges.pre_recharge(ctx, pre("R1"))
    assert (await recharges.pre_recharge(ctx, pre("R1"))).created_at == first.created_at
    await recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R1"))
    assert (await recharges.pre_recharge(ctx, pre("R1"))).status is PreRechargeStatus.SUCCEEDED
    await recharges.pre_recharge(ctx, pre("R2"))
    await recharges.void_recharge(ctx, commands.VoidRecharge("R2", "unpaid"))
    assert (await recharges.pre_recharge(ctx, pre("R2"))).status is PreRechargeStatus.VOIDED
    assert await journal(ctx) == [(JournalKind.RECHARGE_PRINCIPAL, 100_000, 100_000, "R1")]


async def test_the_same_order_number_with_other_parameters_is_refused(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    await open_card(ctx, "6200000000000002")
    await recharges.pre_recharge(ctx, pre("R1"))
    assert await refused(recharges.pre_recharge(ctx, pre("R1", pay=100_001))) == "ORDER_NO_CONFLICT"
    assert await refused(recharges.pre_recharge(ctx, pre("R1", "6200000000000002"))) == "ORDER_NO_CONFLICT"
    await recharges.void_recharge(ctx, commands.VoidRecharge("R1"))
    assert await refused(recharges.pre_recharge(ctx, pre("R1", pay=5))) == "RECHARGE_VOIDED"


async def test_a_tombstone_refuses_a_late_pre_recharge(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    tombstone = await recharges.void_recharge(ctx, commands.VoidRecharge("R9", "payment closed"))
    assert (tombstone.status, tombstone.tombstone, tombstone.card_no, tombstone.void_reason) == (
        PreRechargeStatus.VOIDED,
        True,
        "",
        "payment closed",
    )
    assert await refused(recharges.pre_recharge(ctx, pre("R9"))) == "RECHARGE_VOIDED"
    again = await recharges.void_recharge(ctx, commands.VoidRecharge("R9", "other"))
    assert (again.tombstone, again.void_reason) == (True, "payment closed")
    confirmed = await recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R9"))
    assert confirmed.status is PreRechargeStatus.VOIDED
    view = await cards.get_card(ctx, CARD)
    assert (view.card.balance_fen, view.pending_recharge_fen) == (0, 0)


async def test_card_problems_are_business_refusals(ctx: CardContext) -> None:
    assert await refused(recharges.pre_recharge(ctx, pre("R1"))) == "CARD_NOT_FOUND"
    await open_card(ctx, CARD)
    await cards.freeze_card(ctx, CARD)
    assert await refused(recharges.pre_recharge(ctx, pre("R1"))) == "CARD_FROZEN"
    await cards.close_card(ctx, CARD)
    assert await refused(recharges.pre_recharge(ctx, pre("R1"))) == "CARD_CLOSED"
    with pytest.raises(NotFound):
        await recharges.get_recharge(ctx, "R1")


async def test_limits_and_the_balance_cap_count_pending_credits(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    await rules.set_recharge_rule(
        ctx, rule((BonusTier(1_000, 100),), Limits(500, 3_000, 5_000))
    )
    assert await refused(recharges.pre_recharge(ctx, pre("R1", pay=499))) == "AMOUNT_BELOW_MINIMUM"
    assert await refused(recharges.pre_recharge(ctx, pre("R1", pay=3_001))) == "AMOUNT_ABOVE_MAXIMUM"
    await recharges.pre_recharge(ctx, pre("R1", pay=2_000))  # credit 2_100, pending
    await recharges.pre_recharge(ctx, pre("R2", pay=2_000))  # 4_200
    assert await refused(recharges.pre_recharge(ctx, pre("R3", pay=900))) == "BALANCE_CAP_EXCEEDED"
    await recharges.pre_recharge(ctx, pre("R3", pay=800))  # 5_000: exactly the cap
    assert await refused(recharges.pre_recharge(ctx, pre("R4", pay=500))) == "BALANCE_CAP_EXCEEDED"
    await recharges.void_recharge(ctx, commands.VoidRecharge("R2"))
    await recharges.pre_recharge(ctx, pre("R4", pay=2_000))  # the void freed room


async def test_confirm_credits_principal_and_bonus_once(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    await rules.set_recharge_rule(ctx, rule(PROMOTION))
    await recharges.pre_recharge(ctx, pre("R1"))
    for _ in range(3):
        confirmed = await recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R1"))
        assert confirmed.status is PreRechargeStatus.SUCCEEDED
    assert await journal(ctx) == [
        (JournalKind.RECHARGE_PRINCIPAL, 100_000, 100_000, "R1"),
        (JournalKind.RECHARGE_BONUS, 20_000, 120_000, "R1"),
    ]
    voided = await recharges.void_recharge(ctx, commands.VoidRecharge("R1", "too late"))
    assert (voided.status, voided.void_reason) == (PreRechargeStatus.SUCCEEDED, "")


async def test_a_rule_change_between_pre_recharge_and_confirm_does_not_change_the_credit(
    ctx: CardContext,
) -> None:
    await open_card(ctx, CARD)
    await rules.set_recharge_rule(ctx, rule(PROMOTION))
    await recharges.pre_recharge(ctx, pre("R1"))
    await rules.set_recharge_rule(ctx, rule((BonusTier(100_000, 90_000),)))
    confirmed = await recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R1"))
    assert (confirmed.bonus_fen, confirmed.rule_version) == (20_000, 1)
    assert (await cards.get_card(ctx, CARD)).card.balance_fen == 120_000
    assert (await recharges.pre_recharge(ctx, pre("R2"))).bonus_fen == 90_000


async def test_confirm_on_a_frozen_card_is_refused_and_succeeds_after_unfreeze(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    await recharges.pre_recharge(ctx, pre("R1"))
    await cards.freeze_card(ctx, CARD)
    assert await refused(recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R1"))) == "CARD_FROZEN"
    assert (await recharges.get_recharge(ctx, "R1")).status is PreRechargeStatus.RECHARGING
    await cards.unfreeze_card(ctx, CARD)
    assert (await recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R1"))).status is (
        PreRechargeStatus.SUCCEEDED
    )
    await recharges.pre_recharge(ctx, pre("R2"))
    await cards.close_card(ctx, CARD)
    assert await refused(recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R2"))) == "CARD_CLOSED"
    assert (
        await recharges.void_recharge(ctx, commands.VoidRecharge("R2"))
    ).status is PreRechargeStatus.VOIDED


async def test_confirm_of_an_unknown_order_number_is_not_found_and_leaves_nothing(ctx: CardContext) -> None:
    with pytest.raises(NotFound):
        await recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R404"))
    with pytest.raises(NotFound):
        await recharges.get_recharge(ctx, "R404")


async def test_the_default_rule_is_version_zero_with_default_limits(ctx: CardContext) -> None:
    default = await rules.get_recharge_rule(ctx, MERCHANT)
    assert (default.merchant_id, default.version, default.tiers, default.limits) == (
        MERCHANT, 0, (), Limits(100, 5_000_000, 20_000_000)
    )
    set_rule = await rules.set_recharge_rule(ctx, rule((), Limits(max_pay_fen=900)))
    assert (set_rule.merchant_id, set_rule.version, set_rule.limits) == (
        MERCHANT, 1, Limits(100, 900, 20_000_000)
    )
    assert await rules.get_recharge_rule(ctx, MERCHANT) == set_rule


async def test_a_card_of_one_merchant_cannot_be_pre_recharged_through_another(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    await open_card(ctx, OTHER_CARD, OTHER)
    missing = await refused(recharges.pre_recharge(ctx, pre("R1", "6200000000000404", merchant_id=OTHER)))
    foreign = await refused(recharges.pre_recharge(ctx, pre("R1", CARD, merchant_id=OTHER)))
    assert foreign == missing == "CARD_NOT_FOUND", "another merchant's card looks missing"
    with pytest.raises(NotFound):
        await recharges.get_recharge(ctx, "R1")
    view = await cards.get_card(ctx, CARD)
    assert (view.card.merchant_id, view.card.balance_fen, view.pending_recharge_fen) == (MERCHANT, 0, 0)
    mine = await recharges.pre_recharge(ctx, pre("R1", CARD))
    assert (mine.merchant_id, mine.status) == (MERCHANT, PreRechargeStatus.RECHARGING)


async def test_rules_are_versioned_and_applied_per_merchant(ctx: CardContext) -> None:
    await open_card(ctx, CARD)
    await open_card(ctx, OTHER_CARD, OTHER)
    await open_card(ctx, "6200000000000003", "m-no-rule")
    first = await rules.set_recharge_rule(ctx, rule(PROMOTION))
    second = await rules.set_recharge_rule(ctx, rule((BonusTier(50_000, 9_000),), Limits(max_pay_fen=80_000)))
    other = await rules.set_recharge_rule(ctx, rule((BonusTier(50_000, 1_000),), merchant_id=OTHER))
    assert [(r.merchant_id, r.version) for r in (first, second, other)] == [
        (MERCHANT, 1), (MERCHANT, 2), (OTHER, 1)
    ]
    assert (await rules.get_recharge_rule(ctx, MERCHANT)).version == 2
    assert await rules.get_recharge_rule(ctx, OTHER) == other

    mine = await recharges.pre_recharge(ctx, pre("R1", CARD, 60_000))
    theirs = await recharges.pre_recharge(ctx, pre("R2", OTHER_CARD, 60_000, OTHER))
    nobody = await recharges.pre_recharge(ctx, pre("R3", "6200000000000003", 60_000, "m-no-rule"))
    assert [(r.merchant_id, r.rule_version, r.bonus_fen) for r in (mine, theirs, nobody)] == [
        (MERCHANT, 2, 9_000), (OTHER, 1, 1_000), ("m-no-rule", 0, 0)
    ]
    # MERCHANT's max_pay_fen binds only its own cards.
    assert await refused(recharges.pre_recharge(ctx, pre("R4", CARD, 90_000))) == "AMOUNT_ABOVE_MAXIMUM"
    assert (await recharges.pre_recharge(ctx, pre("R4", OTHER_CARD, 90_000, OTHER))).bonus_fen == 1_000
    assert (await recharges.get_recharge(ctx, "R1")).rule_version == 2  # the snapshot keeps its version


async def test_a_replay_naming_another_merchant_is_refused_like_any_mismatched_replay(
    ctx: CardContext,
) -> None:
    await open_card(ctx, CARD)
    await open_card(ctx, OTHER_CARD, OTHER)
    await recharges.pre_recharge(ctx, pre("R1"))
    assert await refused(recharges.pre_recharge(ctx, pre("R1", merchant_id=OTHER))) == "ORDER_NO_CONFLICT"
    assert await refused(recharges.pre_recharge(ctx, pre("R1", OTHER_CARD, merchant_id=OTHER))) == (
        "ORDER_NO_CONFLICT"
    )
    await recharges.void_recharge(ctx, commands.VoidRecharge("R1"))
    assert await refused(recharges.pre_recharge(ctx, pre("R1", merchant_id=OTHER))) == "RECHARGE_VOIDED"


async def test_confirm_void_and_get_naming_another_merchant_are_not_found_and_change_nothing(
    ctx: CardContext,
) -> None:
    await open_card(ctx, CARD)
    await recharges.pre_recharge(ctx, pre("R1"))
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R1", OTHER)),
        lambda: recharges.void_recharge(ctx, commands.VoidRecharge("R1", "foreign", OTHER)),
        lambda: recharges.get_recharge(ctx, "R1", OTHER),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            await call()
    stored = await recharges.get_recharge(ctx, "R1", MERCHANT)
    assert (stored.status, stored.version, stored.merchant_id) == (PreRechargeStatus.RECHARGING, 0, MERCHANT)
    assert await journal(ctx) == []
    confirmed = await recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R1", MERCHANT))
    assert confirmed.status is PreRechargeStatus.SUCCEEDED
    with pytest.raises(NotFound):  # a terminal record stays hidden too
        await recharges.void_recharge(ctx, commands.VoidRecharge("R1", "foreign", OTHER))
    assert (await cards.get_card(ctx, CARD)).card.balance_fen == 100_000


async def test_a_tombstone_records_the_merchant_that_voided_and_fences_every_merchant(
    ctx: CardContext,
) -> None:
    await open_card(ctx, CARD)
    await open_card(ctx, OTHER_CARD, OTHER)
    tombstone = await recharges.void_recharge(ctx, commands.VoidRecharge("R9", "unpaid", OTHER))
    assert (tombstone.tombstone, tombstone.merchant_id) == (True, OTHER)
    assert await refused(recharges.pre_recharge(ctx, pre("R9"))) == "RECHARGE_VOIDED"
    assert await refused(recharges.pre_recharge(ctx, pre("R9", OTHER_CARD, merchant_id=OTHER))) == (
        "RECHARGE_VOIDED"
    )
    with pytest.raises(NotFound):
        await recharges.get_recharge(ctx, "R9", MERCHANT)
    with pytest.raises(NotFound):
        await recharges.confirm_recharge(ctx, commands.ConfirmRecharge("R9", MERCHANT))
    assert (await recharges.get_recharge(ctx, "R9", OTHER)).void_reason == "unpaid"
    assert (await recharges.get_recharge(ctx, "R9")).merchant_id == OTHER
    # A void naming no merchant leaves a tombstone every merchant sees (it is nobody's).
    anonymous = await recharges.void_recharge(ctx, commands.VoidRecharge("R8", "unpaid"))
    assert anonymous.merchant_id == ""
    assert (await recharges.get_recharge(ctx, "R8", MERCHANT)).tombstone
    assert await refused(recharges.pre_recharge(ctx, pre("R8"))) == "RECHARGE_VOIDED"
    view = await cards.get_card(ctx, CARD)
    assert (view.card.balance_fen, view.pending_recharge_fen) == (0, 0)
