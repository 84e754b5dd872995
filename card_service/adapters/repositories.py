"""SQL repositories: reads go to ``Database.read`` at once, writes are staged in a ``WriteBatch``.

Statements are built once, at import, with bound parameters (building is pure: no engine, no I/O).
Every ``save`` is an optimistic update ``WHERE version = <read version>``; no row changed means
someone else wrote in between, which the locks make impossible, so it raises ``StaleWrite`` inside
the commit and nothing of the unit of work is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from card_service.adapters import tables as t
from card_service.adapters.staging import (
    InsertIfAbsent,
    WriteBatch,
    stage_insert,
    stage_save,
    versioned_update,
)
from card_service.domain.cards import Card, CardStatus
from card_service.domain.consumptions import Consumption, ConsumptionStatus
from card_service.domain.journal import JournalEntry, JournalKind
from card_service.domain.recharges import PreRecharge, PreRechargeStatus
from card_service.domain.rules import BonusTier, Limits, RechargeRule
from card_service.service_layer.ports import StartView
from rc_common.db import Database

T = TypeVar("T")
KEY: sa.BindParameter[str] = sa.bindparam("key", type_=sa.String)


def utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class _Repository:
    def __init__(self, db: Database, batch: WriteBatch) -> None:
        self._db = db
        self._batch = batch

    async def _first(self, query: sa.Select[Any], **params: Any) -> sa.RowMapping | None:
        return await self._db.read(lambda conn: conn.execute(query, params).mappings().first())

    async def _scalar(self, query: sa.Select[Any], **params: Any) -> Any:
        return await self._db.read(lambda conn: conn.execute(query, params).scalar_one())

    async def _run(self, query: Callable[[sa.Connection], T]) -> T:
        return await self._db.read(query)


_CARD = sa.select(t.cards).where(t.cards.c.card_no == KEY)
_ADD_CARD = InsertIfAbsent(t.cards)
_SAVE_CARD = versioned_update(t.cards, "card_no")


def _card(row: Any) -> Card:
    return Card(
        row["card_no"], row["merchant_id"], CardStatus(row["status"]), row["balance_fen"],
        row["holder_name"], utc(row["created_at"]), utc(row["updated_at"]), row["version"],
    )


class SqlCardRepository(_Repository):
    async def get(self, card_no: str) -> Card | None:
        row = await self._first(_CARD, key=card_no)
        return None if row is None else _card(row)

    def add(self, card: Card) -> None:
        _ADD_CARD.stage(self._batch, card.card_no, {
            "card_no": card.card_no, "merchant_id": card.merchant_id, "created_at": card.created_at,
            "version": card.version, **self._values(card),
        })

    def save(self, card: Card) -> None:
        stage_save(self._batch, _SAVE_CARD, card.card_no, card, self._values(card))

    @staticmethod
    def _values(card: Card) -> dict[str, Any]:
        return {"status": card.status.value, "balance_fen": card.balance_fen,
                "holder_name": card.holder_name, "updated_at": card.updated_at}


_RECHARGE = sa.select(t.pre_recharges).where(t.pre_recharges.c.order_no == KEY)
_RECHARGE_WITH_CARD = (
    sa.select(t.pre_recharges, *[column.label(f"card_{column.name}") for column in t.cards.c])
    .join(t.cards, t.cards.c.card_no == t.pre_recharges.c.card_no)
    .where(t.pre_recharges.c.order_no == KEY)
)
_CARD_LABELS = [(column.name, f"card_{column.name}") for column in t.cards.c]
_PENDING = sa.select(
    sa.func.coalesce(sa.func.sum(t.pre_recharges.c.pay_amount_fen + t.pre_recharges.c.bonus_fen), 0)
).where(t.pre_recharges.c.card_no == KEY,
        t.pre_recharges.c.status == PreRechargeStatus.RECHARGING.value)
_CARD_WITH_PENDING = sa.select(t.cards, _PENDING.scalar_subquery().label("pending_fen")).where(
    t.cards.c.card_no == KEY
)
_ADD_RECHARGE = sa.insert(t.pre_recharges)
_SAVE_RECHARGE = versioned_update(t.pre_recharges, "order_no")


def _recharge(row: Any) -> PreRecharge:
    return PreRecharge(
        row["order_no"], row["card_no"], row["merchant_id"], PreRechargeStatus(row["status"]),
        row["pay_amount_fen"], row["bonus_fen"], row["rule_version"], utc(row["created_at"]),
        utc(row["updated_at"]), row["void_reason"], bool(row["tombstone"]), row["version"],
    )


class SqlRechargeRepository(_Repository):
    async def get(self, order_no: str) -> PreRecharge | None:
        row = await self._first(_RECHARGE, key=order_no)
        return None if row is None else _recharge(row)

    async def start_view(self, order_no: str, card_no: str) -> StartView:
        def read(conn: sa.Connection) -> StartView:
            row = conn.execute(_RECHARGE, {"key": order_no}).mappings().first()
            if row is not None:
                return StartView(_recharge(row), None, 0)
            row = conn.execute(_CARD_WITH_PENDING, {"key": card_no}).mappings().first()
            if row is None:
                return StartView(None, None, 0)
            return StartView(None, _card(row), int(row["pending_fen"]))  # PostgreSQL: a Decimal

        return await self._run(read)

    async def get_with_card(self, order_no: str) -> tuple[PreRecharge, Card] | None:
        row = await self._first(_RECHARGE_WITH_CARD, key=order_no)
        if row is None:
            return None
        card_row = {name: row[label] for name, label in _CARD_LABELS}
        return _recharge(row), _card(card_row)

    def add(self, recharge: PreRecharge) -> None:
        stage_insert(self._batch, _ADD_RECHARGE, [{
            "order_no": recharge.order_no, "card_no": recharge.card_no,
            "merchant_id": recharge.merchant_id, "pay_amount_fen": recharge.pay_amount_fen,
            "bonus_fen": recharge.bonus_fen,
            "rule_version": recharge.rule_version, "tombstone": recharge.tombstone,
            "created_at": recharge.created_at, "version": recharge.version, **self._values(recharge),
        }])

    def save(self, recharge: PreRecharge) -> None:
        stage_save(self._batch, _SAVE_RECHARGE, recharge.order_no, recharge, self._values(recharge))

    async def pending_credit_fen(self, card_no: str) -> int:
        return int(await self._scalar(_PENDING, key=card_no))

    @staticmethod
    def _values(recharge: PreRecharge) -> dict[str, Any]:
        return {"status": recharge.status.value, "void_reason": recharge.void_reason,
                "updated_at": recharge.updated_at}


_CONSUMPTION = sa.select(t.consumptions).where(t.consumptions.c.request_id == KEY)
_ADD_CONSUMPTION = sa.insert(t.consumptions)
_SAVE_CONSUMPTION = versioned_update(t.consumptions, "request_id")


class SqlConsumptionRepository(_Repository):
    async def get(self, request_id: str) -> Consumption | None:
        row = await self._first(_CONSUMPTION, key=request_id)
        if row is None:
            return None
        return Consumption(
            row["request_id"], row["card_no"], row["amount_fen"], row["merchant_id"],
            ConsumptionStatus(row["status"]), row["balance_after_fen"], utc(row["created_at"]),
            utc(row["updated_at"]), row["version"],
        )

    def add(self, consumption: Consumption) -> None:
        stage_insert(self._batch, _ADD_CONSUMPTION, [{
            "request_id": consumption.request_id, "card_no": consumption.card_no,
            "amount_fen": consumption.amount_fen, "merchant_id": consumption.merchant_id,
            "created_at": consumption.created_at, "version": consumption.version,
            **self._values(consumption),
        }])

    def save(self, consumption: Consumption) -> None:
        stage_save(self._batch, _SAVE_CONSUMPTION, consumption.request_id, consumption,
                   self._values(consumption))

    @staticmethod
    def _values(consumption: Consumption) -> dict[str, Any]:
        return {"status": consumption.status.value, "balance_after_fen": consumption.balance_after_fen,
                "updated_at": consumption.updated_at}


_J = t.journal_entries.c
_JOURNAL_PAGE = (
    sa.select(t.journal_entries)
    .where(_J.card_no == KEY, _J.entry_id > sa.bindparam("after", type_=sa.BigInteger))
    .order_by(_J.entry_id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_JOURNAL_TOTAL = sa.select(sa.func.coalesce(sa.func.sum(_J.amount_fen), 0)).where(_J.card_no == KEY)
_APPEND_JOURNAL = sa.insert(t.journal_entries)
_C = t.cards.c
_DAY_PAGE = (
    sa.select(t.journal_entries, _C.merchant_id)
    .join(t.cards, _C.card_no == _J.card_no)
    .where(
        _J.created_at >= sa.bindparam("start", type_=t.Timestamp),
        _J.created_at < sa.bindparam("end", type_=t.Timestamp),
        _J.entry_id > sa.bindparam("after", type_=sa.BigInteger),
    )
    .order_by(_J.entry_id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_DAY_PAGE_OF_MERCHANT = _DAY_PAGE.where(_C.merchant_id == sa.bindparam("merchant", type_=sa.String))


class SqlJournalRepository(_Repository):
    def append(self, entries: Sequence[JournalEntry]) -> None:
        stage_insert(self._batch, _APPEND_JOURNAL, [
            {"card_no": e.card_no, "kind": e.kind.value, "amount_fen": e.amount_fen,
             "balance_after_fen": e.balance_after_fen, "business_key": e.business_key,
             "created_at": e.created_at}
            for e in entries
        ])

    async def page(self, card_no: str, after_entry_id: int, limit: int) -> list[JournalEntry]:
        params = {"key": card_no, "after": after_entry_id, "limit": limit}
        rows = await self._run(lambda conn: conn.execute(_JOURNAL_PAGE, params).mappings().all())
        return [
            JournalEntry(row["card_no"], JournalKind(row["kind"]), row["amount_fen"],
                         row["balance_after_fen"], row["business_key"], utc(row["created_at"]),
                         row["entry_id"])
            for row in rows
        ]

    async def total_fen(self, card_no: str) -> int:
        return int(await self._scalar(_JOURNAL_TOTAL, key=card_no))

    async def day_page(
        self, start: datetime, end: datetime, merchant_id: str, after_entry_id: int, limit: int
    ) -> list[tuple[JournalEntry, str]]:
        """Entries created in [start, end) of every card (or ``merchant_id``'s), in entry order."""
        query = _DAY_PAGE_OF_MERCHANT if merchant_id else _DAY_PAGE
        params = {
            "start": start, "end": end, "after": after_entry_id, "limit": limit, "merchant": merchant_id
        }  # fmt: skip
        rows = await self._run(lambda conn: conn.execute(query, params).mappings().all())
        return [
            (JournalEntry(row["card_no"], JournalKind(row["kind"]), row["amount_fen"],
                          row["balance_after_fen"], row["business_key"], utc(row["created_at"]),
                          row["entry_id"]), row["merchant_id"])
            for row in rows
        ]  # fmt: skip


_R = t.recharge_rules.c
_B = t.bonus_tiers.c
_LATEST_RULE = sa.select(t.recharge_rules).where(_R.merchant_id == KEY).order_by(_R.version.desc()).limit(1)
_TIERS = (
    sa.select(_B.min_pay_fen, _B.bonus_fen)
    .where(_B.merchant_id == KEY, _B.rule_version == sa.bindparam("version", type_=sa.BigInteger))
    .order_by(_B.min_pay_fen)
)
_ADD_RULE = sa.insert(t.recharge_rules)
_ADD_TIERS = sa.insert(t.bonus_tiers)


def _latest_rule(merchant_id: str) -> Callable[[sa.Connection], RechargeRule | None]:
    def read(conn: sa.Connection) -> RechargeRule | None:
        row = conn.execute(_LATEST_RULE, {"key": merchant_id}).mappings().first()
        if row is None:
            return None
        tiers = conn.execute(_TIERS, {"key": merchant_id, "version": row["version"]})
        return RechargeRule(
            merchant_id,
            row["version"],
            tuple(BonusTier(min_pay, bonus) for min_pay, bonus in tiers),
            Limits(row["min_pay_fen"], row["max_pay_fen"], row["balance_cap_fen"]),
            utc(row["created_at"]),
        )

    return read


class SqlRuleRepository(_Repository):
    async def current(self, merchant_id: str) -> RechargeRule | None:
        return await self._run(_latest_rule(merchant_id))

    def add(self, rule: RechargeRule) -> None:
        stage_insert(self._batch, _ADD_RULE, [{
            "merchant_id": rule.merchant_id, "version": rule.version,
            "min_pay_fen": rule.limits.min_pay_fen, "max_pay_fen": rule.limits.max_pay_fen,
            "balance_cap_fen": rule.limits.balance_cap_fen, "created_at": rule.created_at,
        }])
        stage_insert(self._batch, _ADD_TIERS, [
            {"merchant_id": rule.merchant_id, "rule_version": rule.version,
             "min_pay_fen": tier.min_pay_fen, "bonus_fen": tier.bonus_fen}
            for tier in rule.tiers
        ])
