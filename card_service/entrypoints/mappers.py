"""Domain objects to protobuf messages (and the few request parts that need converting back)."""

from __future__ import annotations

from card_service.domain.cards import CardStatus
from card_service.domain.consumptions import Consumption, ConsumptionStatus
from card_service.domain.journal import JournalEntry, JournalKind
from card_service.domain.recharges import PreRecharge, PreRechargeStatus
from card_service.domain.rules import BonusTier, Limits, RechargeRule
from card_service.service_layer.cards import CardView
from card_service.service_layer.export import ExportedEntry
from protos.card.v1 import card_pb2
from rc_common import page_tokens
from rc_common.errors import InvalidArgument
from rc_common.timestamps import to_timestamp as timestamp

#: Domain enums to proto enum numbers, looked up once.
_CARD_STATUS = {s: card_pb2.CardStatus.Value(f"CARD_STATUS_{s.name}") for s in CardStatus}
_RECHARGE_STATUS = {
    s: card_pb2.PreRechargeStatus.Value(f"PRE_RECHARGE_STATUS_{s.name}") for s in PreRechargeStatus
}
_CONSUMPTION_STATUS = {
    s: card_pb2.ConsumptionStatus.Value(f"CONSUMPTION_STATUS_{s.name}") for s in ConsumptionStatus
}
_JOURNAL_KIND = {k: card_pb2.JournalKind.Value(f"JOURNAL_KIND_{k.name}") for k in JournalKind}


def card_to_proto(view: CardView) -> card_pb2.Card:
    card = view.card
    return card_pb2.Card(
        card_no=card.card_no,
        merchant_id=card.merchant_id,
        status=_CARD_STATUS[card.status],
        balance_fen=card.balance_fen,
        pending_recharge_fen=view.pending_recharge_fen,
        holder_name=card.holder_name,
        created_at=timestamp(card.created_at),
        updated_at=timestamp(card.updated_at),
    )


def recharge_to_proto(recharge: PreRecharge) -> card_pb2.PreRecharge:
    return card_pb2.PreRecharge(
        order_no=recharge.order_no,
        card_no=recharge.card_no,
        status=_RECHARGE_STATUS[recharge.status],
        pay_amount_fen=recharge.pay_amount_fen,
        bonus_fen=recharge.bonus_fen,
        credit_amount_fen=recharge.credit_amount_fen,
        rule_version=recharge.rule_version,
        void_reason=recharge.void_reason,
        tombstone=recharge.tombstone,
        created_at=timestamp(recharge.created_at),
        updated_at=timestamp(recharge.updated_at),
        merchant_id=recharge.merchant_id,
    )


def consumption_to_proto(consumption: Consumption) -> card_pb2.Consumption:
    return card_pb2.Consumption(
        request_id=consumption.request_id,
        card_no=consumption.card_no,
        amount_fen=consumption.amount_fen,
        merchant_id=consumption.merchant_id,
        status=_CONSUMPTION_STATUS[consumption.status],
        balance_after_fen=consumption.balance_after_fen,
        created_at=timestamp(consumption.created_at),
    )


def entry_to_proto(entry: JournalEntry) -> card_pb2.JournalEntry:
    return card_pb2.JournalEntry(
        entry_id=entry.entry_id or 0,
        card_no=entry.card_no,
        kind=_JOURNAL_KIND[entry.kind],
        amount_fen=entry.amount_fen,
        balance_after_fen=entry.balance_after_fen,
        business_key=entry.business_key,
        created_at=timestamp(entry.created_at),
    )


def rule_to_proto(rule: RechargeRule) -> card_pb2.RechargeRule:
    return card_pb2.RechargeRule(
        version=rule.version,
        tiers=[card_pb2.BonusTier(min_pay_fen=t.min_pay_fen, bonus_fen=t.bonus_fen) for t in rule.tiers],
        min_pay_fen=rule.limits.min_pay_fen,
        max_pay_fen=rule.limits.max_pay_fen,
        balance_cap_fen=rule.limits.balance_cap_fen,
        created_at=timestamp(rule.created_at),
        merchant_id=rule.merchant_id,
    )


def tiers_from_proto(request: card_pb2.SetRechargeRuleRequest) -> tuple[tuple[BonusTier, ...], Limits]:
    tiers = tuple(BonusTier(t.min_pay_fen, t.bonus_fen) for t in request.tiers)
    return tiers, Limits(request.min_pay_fen, request.max_pay_fen, request.balance_cap_fen)


def page_token(card_no: str, after_entry_id: int) -> str:
    """Opaque to callers; bound to the card it pages through. '' when there is no next page."""
    if not after_entry_id:
        return ""
    return page_tokens.make("journal", [card_no, str(after_entry_id)])


def after_entry_id(card_no: str, token: str) -> int:
    if not token:
        return 0
    try:
        owner, after = page_tokens.read("journal", token, 2)
        if owner != card_no:
            raise ValueError("another card's token")
        return page_tokens.read_position(after)
    except ValueError as exc:
        raise InvalidArgument("page_token", "not a token this card's journal returned") from exc


def export_token(date: str, merchant_id: str, after_entry_id: int) -> str:
    """Bound to the day and merchant it pages through. '' when there is no next page."""
    if not after_entry_id:
        return ""
    return page_tokens.make("journal-export", [date, merchant_id, str(after_entry_id)])


def export_after(date: str, merchant_id: str, token: str) -> int:
    if not token:
        return 0
    try:
        day, merchant, after = page_tokens.read("journal-export", token, 3)
        if (day, merchant) != (date, merchant_id):
            raise ValueError("another export's token")
        return page_tokens.read_position(after)
    except ValueError as exc:
        raise InvalidArgument("page_token", "not a token this export returned") from exc


def exported_to_proto(item: ExportedEntry) -> card_pb2.ExportedJournalEntry:
    return card_pb2.ExportedJournalEntry(entry=entry_to_proto(item.entry), merchant_id=item.merchant_id)
