"""The pre-recharge state machine and the ledger moves that credit a card."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from card_service.domain import ledger
from card_service.domain.cards import Card
from card_service.domain.journal import JournalKind
from card_service.domain.recharges import (
    TRANSITIONS,
    PreRecharge,
    PreRechargeStatus,
    guard,
)
from card_service.domain.rules import BonusTier, Limits, RechargeRule
from card_service.domain.transitions import IllegalTransition
from rc_common.errors import Refused

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULTS = Limits(100, 5_000_000, 20_000_000)
M = "m-1"
RULE = RechargeRule(M, 3, (BonusTier(20_000, 2_000), BonusTier(100_000, 20_000)))


def recharging(pay: int = 100_000, bonus: int = 20_000) -> PreRecharge:
    return PreRecharge.start("R1", "62000001", M, pay, bonus, 3, NOW)


def card() -> Card:
    return Card.open("62000001", M, "", NOW)


def test_only_recharging_has_moves_and_both_terminal_states_are_final() -> None:
    assert TRANSITIONS[PreRechargeStatus.RECHARGING] == {
        PreRechargeStatus.SUCCEEDED,
        PreRechargeStatus.VOIDED,
    }
    for terminal in (PreRechargeStatus.SUCCEEDED, PreRechargeStatus.VOIDED):
        for target in PreRechargeStatus:
            with pytest.raises(IllegalTransition):
                guard(terminal, target)


def test_a_confirmed_pre_recharge_can_never_be_voided() -> None:
    recharge = recharging()
    recharge.confirm(NOW)
    with pytest.raises(IllegalTransition):
        recharge.void("late", NOW)
    assert recharge.status is PreRechargeStatus.SUCCEEDED


def test_a_voided_pre_recharge_can_never_be_confirmed() -> None:
    recharge = recharging()
    recharge.void("customer gave up", NOW)
    with pytest.raises(IllegalTransition):
        recharge.confirm(NOW)
    assert (recharge.status, recharge.void_reason) == (PreRechargeStatus.VOIDED, "customer gave up")


def test_start_fixes_the_bonus_of_the_rule_in_force_and_its_version() -> None:
    topped_up = card()
    recharge = ledger.start_pre_recharge(topped_up, RULE, DEFAULTS, "R1", 150_000, 0, NOW)
    assert (recharge.bonus_fen, recharge.credit_amount_fen, recharge.rule_version) == (20_000, 170_000, 3)
    assert (recharge.status, recharge.merchant_id) == (PreRechargeStatus.RECHARGING, M)
    assert topped_up.balance_fen == 0


def test_start_refuses_a_rule_of_another_merchant() -> None:
    with pytest.raises(ValueError):
        ledger.start_pre_recharge(card(), RechargeRule("m-2", 1), DEFAULTS, "R1", 150_000, 0, NOW)


def test_confirm_credits_principal_then_bonus_with_the_order_number_as_key() -> None:
    card = Card.open("62000001", M, "", NOW)
    card.balance_fen = 500
    entries = ledger.confirm_recharge(card, recharging(), NOW)
    assert [(e.kind, e.amount_fen, e.balance_after_fen, e.business_key) for e in entries] == [
        (JournalKind.RECHARGE_PRINCIPAL, 100_000, 100_500, "R1"),
        (JournalKind.RECHARGE_BONUS, 20_000, 120_500, "R1"),
    ]
    assert card.balance_fen == 120_500


def test_confirm_without_bonus_writes_only_the_principal() -> None:
    card = Card.open("62000001", M, "", NOW)
    entries = ledger.confirm_recharge(card, recharging(bonus=0), NOW)
    assert [e.kind for e in entries] == [JournalKind.RECHARGE_PRINCIPAL]


@pytest.mark.parametrize(("change", "reason"), [(Card.freeze, "CARD_FROZEN"), (Card.close, "CARD_CLOSED")])
def test_confirm_on_an_inactive_card_is_refused_and_the_record_stays_recharging(
    change: Callable[[Card, datetime], None], reason: str
) -> None:
    card = Card.open("62000001", M, "", NOW)
    change(card, NOW)
    recharge = recharging()
    with pytest.raises(Refused) as refused:
        ledger.confirm_recharge(card, recharge, NOW)
    assert refused.value.reason == reason
    assert recharge.status is PreRechargeStatus.RECHARGING
    assert card.balance_fen == 0


def test_a_faithful_replay_passes_whatever_the_status() -> None:
    for finish in (lambda r: None, lambda r: r.confirm(NOW), lambda r: r.void("x", NOW)):
        recharge = recharging()
        finish(recharge)
        recharge.check_replay("62000001", 100_000, M)


@pytest.mark.parametrize(
    ("status", "card_no", "pay", "merchant_id", "reason"),
    [
        ("RECHARGING", "62000002", 100_000, M, "ORDER_NO_CONFLICT"),
        ("RECHARGING", "62000001", 100_001, M, "ORDER_NO_CONFLICT"),
        ("RECHARGING", "62000001", 100_000, "m-2", "ORDER_NO_CONFLICT"),
        ("SUCCEEDED", "62000001", 1, M, "ORDER_NO_CONFLICT"),
        ("SUCCEEDED", "62000001", 100_000, "m-2", "ORDER_NO_CONFLICT"),
        ("VOIDED", "62000001", 1, M, "RECHARGE_VOIDED"),
        ("VOIDED", "62000001", 100_000, "m-2", "RECHARGE_VOIDED"),
    ],
)
def test_a_replay_with_other_parameters_is_refused(
    status: str, card_no: str, pay: int, merchant_id: str, reason: str
) -> None:
    recharge = recharging()
    if status == "SUCCEEDED":
        recharge.confirm(NOW)
    if status == "VOIDED":
        recharge.void("x", NOW)
    with pytest.raises(Refused) as refused:
        recharge.check_replay(card_no, pay, merchant_id)
    assert refused.value.reason == reason


def test_a_tombstone_refuses_every_pre_recharge_of_its_order_number_whichever_the_merchant() -> None:
    tombstone = PreRecharge.tombstone_for("R9", M, "never paid", NOW)
    assert (tombstone.status, tombstone.card_no, tombstone.tombstone, tombstone.merchant_id) == (
        PreRechargeStatus.VOIDED, "", True, M
    )
    for card_no, pay, merchant_id in (("", 0, ""), ("62000001", 100_000, M), ("62000001", 100_000, "m-2")):
        with pytest.raises(Refused) as refused:
            tombstone.check_replay(card_no, pay, merchant_id)
        assert refused.value.reason == "RECHARGE_VOIDED"


def test_a_record_is_seen_by_its_merchant_and_a_tombstone_naming_none_by_all() -> None:
    recharge = recharging()
    assert recharge.visible_to(M) and recharge.visible_to("")
    assert not recharge.visible_to("m-2")
    assert not PreRecharge.tombstone_for("R9", M, "", NOW).visible_to("m-2")
    assert PreRecharge.tombstone_for("R9", "", "", NOW).visible_to("m-2")
