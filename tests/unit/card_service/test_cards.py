"""Cards: status changes and the balance moves, each recorded as a journal entry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from card_service.domain import ledger
from card_service.domain.cards import Card, CardStatus
from card_service.domain.consumptions import ConsumptionStatus
from card_service.domain.journal import JournalKind
from card_service.domain.transitions import IllegalTransition
from rc_common.errors import Refused

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def funded(balance: int) -> Card:
    card = Card.open("62000001", "m-1", "Li", NOW)
    if balance:
        card.credit(JournalKind.RECHARGE_PRINCIPAL, balance, "R0", NOW)
    return card


def test_a_spend_never_takes_the_balance_below_zero() -> None:
    card = funded(1_000)
    with pytest.raises(Refused) as refused:
        card.spend(1_001, "C1", NOW)
    assert refused.value.reason == "INSUFFICIENT_BALANCE"
    assert card.balance_fen == 1_000
    entry = card.spend(1_000, "C2", NOW)
    assert (entry.kind, entry.amount_fen, entry.balance_after_fen) == (JournalKind.CONSUME, -1_000, 0)


@pytest.mark.parametrize(("change", "reason"), [(Card.freeze, "CARD_FROZEN"), (Card.close, "CARD_CLOSED")])
def test_an_inactive_card_cannot_spend(change: Callable[[Card, datetime], None], reason: str) -> None:
    card = funded(1_000)
    change(card, NOW)
    with pytest.raises(Refused) as refused:
        card.spend(1, "C1", NOW)
    assert refused.value.reason == reason


def test_freeze_and_unfreeze_are_idempotent_and_closing_is_final() -> None:
    card = funded(0)
    card.freeze(NOW)
    card.freeze(NOW)
    assert card.status is CardStatus.FROZEN
    card.unfreeze(NOW)
    card.unfreeze(NOW)
    assert card.status is CardStatus.ACTIVE
    card.close(NOW)
    card.close(NOW)
    for change in (Card.freeze, Card.unfreeze):
        with pytest.raises(Refused) as refused:
            change(card, NOW)
        assert refused.value.reason == "CARD_CLOSED"
    assert card.status is CardStatus.CLOSED


def test_credits_must_be_positive() -> None:
    card = funded(10)
    with pytest.raises(ValueError):
        card.credit(JournalKind.RECHARGE_BONUS, 0, "R1", NOW)
    with pytest.raises(ValueError):
        card.spend(0, "C1", NOW)
    assert card.balance_fen == 10


def test_a_consumption_is_reversed_once_and_records_the_balance_after() -> None:
    card = funded(1_000)
    consumption, entry = ledger.consume(card, "C1", 300, "M1", NOW)
    assert (consumption.status, consumption.balance_after_fen, entry.amount_fen) == (
        ConsumptionStatus.COMPLETED,
        700,
        -300,
    )
    back = ledger.reverse_consumption(card, consumption, NOW)
    assert (back.kind, back.amount_fen, back.balance_after_fen) == (JournalKind.CONSUME_REVERSAL, 300, 1_000)
    assert (consumption.status, consumption.balance_after_fen) == (ConsumptionStatus.REVERSED, 1_000)
    with pytest.raises(IllegalTransition):
        ledger.reverse_consumption(card, consumption, NOW)
    assert card.balance_fen == 1_000


def test_a_frozen_card_takes_a_reversal_but_a_closed_one_does_not() -> None:
    card = funded(1_000)
    first, _ = ledger.consume(card, "C1", 100, "", NOW)
    second, _ = ledger.consume(card, "C2", 100, "", NOW)
    card.freeze(NOW)
    ledger.reverse_consumption(card, first, NOW)
    card.close(NOW)
    with pytest.raises(Refused) as refused:
        ledger.reverse_consumption(card, second, NOW)
    assert refused.value.reason == "CARD_CLOSED"
    assert (card.balance_fen, second.status) == (900, ConsumptionStatus.COMPLETED)


def test_a_card_is_seen_by_its_merchant_or_by_a_request_naming_none() -> None:
    card = Card.open("62000001", "m-1", "Li", NOW)
    assert card.merchant_id == "m-1"
    assert card.visible_to("m-1") and card.visible_to("")
    assert not card.visible_to("m-2") and not card.visible_to("M-1")
