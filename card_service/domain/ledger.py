"""Domain services: the moves that touch a card and a pre-recharge or consumption together."""

from __future__ import annotations

from datetime import datetime

from card_service.domain.cards import Card, CardStatus, refuse_inactive
from card_service.domain.consumptions import Consumption, ConsumptionStatus
from card_service.domain.journal import JournalEntry, JournalKind
from card_service.domain.recharges import PreRecharge
from card_service.domain.rules import Limits, RechargeRule


def start_pre_recharge(
    card: Card, rule: RechargeRule, defaults: Limits, order_no: str, pay_amount_fen: int,
    pending_fen: int, now: datetime,
) -> PreRecharge:
    """Checks the top-up is legal and fixes its bonus with ``rule`` (the card's merchant's rule
    in force); credits nothing."""
    if rule.merchant_id != card.merchant_id:
        raise ValueError(f"rule of merchant {rule.merchant_id!r} for a card of {card.merchant_id!r}")
    card.ensure_active()
    bonus_fen = rule.bonus_for(pay_amount_fen)
    limits = rule.limits.filled(defaults)
    limits.check_top_up(pay_amount_fen, pay_amount_fen + bonus_fen, card.balance_fen, pending_fen)
    return PreRecharge.start(
        order_no, card.card_no, card.merchant_id, pay_amount_fen, bonus_fen, rule.version, now
    )


def confirm_recharge(card: Card, recharge: PreRecharge, now: datetime) -> list[JournalEntry]:
    """RECHARGING -> SUCCEEDED and the credit: principal, then bonus when there is one."""
    card.ensure_active()
    recharge.confirm(now)
    entries = [card.credit(JournalKind.RECHARGE_PRINCIPAL, recharge.pay_amount_fen, recharge.order_no, now)]
    if recharge.bonus_fen > 0:
        entries.append(card.credit(JournalKind.RECHARGE_BONUS, recharge.bonus_fen, recharge.order_no, now))
    return entries


def consume(
    card: Card, request_id: str, amount_fen: int, merchant_id: str, now: datetime
) -> tuple[Consumption, JournalEntry]:
    """Spends at once; refuses an inactive card or a balance that would go below zero."""
    entry = card.spend(amount_fen, request_id, now)
    consumption = Consumption(
        request_id, card.card_no, amount_fen, merchant_id, ConsumptionStatus.COMPLETED,
        entry.balance_after_fen, now, now,
    )
    return consumption, entry


def reverse_consumption(card: Card, consumption: Consumption, now: datetime) -> JournalEntry:
    """Gives a consumption back once. A FROZEN card takes it back; a CLOSED one is final."""
    consumption.ensure_reversible()
    if card.status is CardStatus.CLOSED:
        refuse_inactive(card.status, card.card_no)
    entry = card.credit(JournalKind.CONSUME_REVERSAL, consumption.amount_fen, consumption.request_id, now)
    consumption.reverse(entry.balance_after_fen, now)
    return entry
