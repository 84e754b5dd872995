"""SQL repositories over one AsyncSession (one transaction). Core statements, portable SQL.

Every ``save`` is an optimistic update: ``WHERE version = <read version>``; no row changed means
someone else wrote in between, which the locks make impossible, so it raises ``StaleWrite``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from card_service.adapters import tables as t
from card_service.domain.cards import Card, CardStatus
from card_service.domain.consumptions import Consumption, ConsumptionStatus
from card_service.domain.journal import JournalEntry, JournalKind
from card_service.domain.recharges import PreRecharge, PreRechargeStatus
from card_service.domain.rules import BonusTier, Limits, RechargeRule
from card_service.service_layer.ports import StaleWrite


def utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _versioned_update(
    session: AsyncSession, table: sa.Table, key: sa.ColumnElement[bool], entity: Any, values: dict[str, Any]
) -> None:
    result = await session.execute(
        sa.update(table)
        .where(key, table.c.version == entity.version)
        .values(**values, version=entity.version + 1)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        raise StaleWrite(f"{table.name}: row changed since it was read")
    entity.version += 1


def _card(row: Any) -> Card:
    return Card(
        row["card_no"], CardStatus(row["status"]), row["balance_fen"], row["holder_name"],
        utc(row["created_at"]), utc(row["updated_at"]), row["version"],
    )


def _recharge(row: Any) -> PreRecharge:
    return PreRecharge(
        row["order_no"], row["card_no"], PreRechargeStatus(row["status"]), row["pay_amount_fen"],
        row["bonus_fen"], row["rule_version"], utc(row["created_at"]), utc(row["updated_at"]),
        row["void_reason"], bool(row["tombstone"]), row["version"],
    )


class SqlCardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, card_no: str, *, for_update: bool = False) -> Card | None:
        query = sa.select(t.cards).where(t.cards.c.card_no == card_no)
        if for_update:
            query = query.with_for_update()
        row = (await self._session.execute(query)).mappings().first()
        return None if row is None else _card(row)

    async def add(self, card: Card) -> None:
        await self._session.execute(sa.insert(t.cards).values(
            card_no=card.card_no, created_at=card.created_at, version=card.version, **self._values(card),
        ))

    async def save(self, card: Card) -> None:
        await _versioned_update(self._session, t.cards, t.cards.c.card_no == card.card_no, card,
                                self._values(card))

    @staticmethod
    def _values(card: Card) -> dict[str, Any]:
        return {"status": card.status.value, "balance_fen": card.balance_fen,
                "holder_name": card.holder_name, "updated_at": card.updated_at}


class SqlRechargeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, order_no: str) -> PreRecharge | None:
        query = sa.select(t.pre_recharges).where(t.pre_recharges.c.order_no == order_no)
        row = (await self._session.execute(query)).mappings().first()
        return None if row is None else _recharge(row)

    async def get_with_card(self, order_no: str) -> tuple[PreRecharge, Card] | None:
        r, c = t.pre_recharges.c, t.cards.c
        card_columns = [column.label(f"card_{column.name}") for column in t.cards.c]
        query = (
            sa.select(t.pre_recharges, *card_columns)
            .join(t.cards, c.card_no == r.card_no)
            .where(r.order_no == order_no)
            .with_for_update(of=t.cards)
        )
        row = (await self._session.execute(query)).mappings().first()
        if row is None:
            return None
        card_row = {column.name: row[f"card_{column.name}"] for column in t.cards.c}
        return _recharge(row), _card(card_row)

    async def add(self, recharge: PreRecharge) -> None:
        await self._session.execute(sa.insert(t.pre_recharges).values(
            order_no=recharge.order_no, card_no=recharge.card_no, pay_amount_fen=recharge.pay_amount_fen,
            bonus_fen=recharge.bonus_fen, rule_version=recharge.rule_version, tombstone=recharge.tombstone,
            created_at=recharge.created_at, version=recharge.version, **self._values(recharge),
        ))

    async def save(self, recharge: PreRecharge) -> None:
        key = t.pre_recharges.c.order_no == recharge.order_no
        await _versioned_update(self._session, t.pre_recharges, key, recharge, self._values(recharge))

    async def pending_credit_fen(self, card_no: str) -> int:
        c = t.pre_recharges.c
        query = sa.select(sa.func.coalesce(sa.func.sum(c.pay_amount_fen + c.bonus_fen), 0)).where(
            c.card_no == card_no, c.status == PreRechargeStatus.RECHARGING.value
        )
        return int((await self._session.execute(query)).scalar_one())

    @staticmethod
    def _values(recharge: PreRecharge) -> dict[str, Any]:
        return {"status": recharge.status.value, "void_reason": recharge.void_reason,
                "updated_at": recharge.updated_at}


class SqlConsumptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, request_id: str) -> Consumption | None:
        query = sa.select(t.consumptions).where(t.consumptions.c.request_id == request_id)
        row = (await self._session.execute(query)).mappings().first()
        if row is None:
            return None
        return Consumption(
            row["request_id"], row["card_no"], row["amount_fen"], row["merchant_id"],
            ConsumptionStatus(row["status"]), row["balance_after_fen"], utc(row["created_at"]),
            utc(row["updated_at"]), row["version"],
        )

    async def add(self, consumption: Consumption) -> None:
        await self._session.execute(sa.insert(t.consumptions).values(
            request_id=consumption.request_id, card_no=consumption.card_no,
            amount_fen=consumption.amount_fen, merchant_id=consumption.merchant_id,
            created_at=consumption.created_at, version=consumption.version, **self._values(consumption),
        ))

    async def save(self, consumption: Consumption) -> None:
        key = t.consumptions.c.request_id == consumption.request_id
        await _versioned_update(self._session, t.consumptions, key, consumption, self._values(consumption))

    @staticmethod
    def _values(consumption: Consumption) -> dict[str, Any]:
        return {"status": consumption.status.value, "balance_after_fen": consumption.balance_after_fen,
                "updated_at": consumption.updated_at}


class SqlJournalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, entries: Sequence[JournalEntry]) -> None:
        rows = [
            {"card_no": e.card_no, "kind": e.kind.value, "amount_fen": e.amount_fen,
             "balance_after_fen": e.balance_after_fen, "business_key": e.business_key,
             "created_at": e.created_at}
            for e in entries
        ]
        await self._session.execute(sa.insert(t.journal_entries), rows)

    async def page(self, card_no: str, after_entry_id: int, limit: int) -> list[JournalEntry]:
        c = t.journal_entries.c
        query = (sa.select(t.journal_entries).where(c.card_no == card_no, c.entry_id > after_entry_id)
                 .order_by(c.entry_id).limit(limit))
        return [
            JournalEntry(row["card_no"], JournalKind(row["kind"]), row["amount_fen"],
                         row["balance_after_fen"], row["business_key"], utc(row["created_at"]),
                         row["entry_id"])
            for row in (await self._session.execute(query)).mappings()
        ]

    async def total_fen(self, card_no: str) -> int:
        c = t.journal_entries.c
        query = sa.select(sa.func.coalesce(sa.func.sum(c.amount_fen), 0)).where(c.card_no == card_no)
        return int((await self._session.execute(query)).scalar_one())


class SqlRuleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def current(self) -> RechargeRule | None:
        r = t.recharge_rules.c
        query = sa.select(t.recharge_rules).order_by(r.version.desc()).limit(1)
        row = (await self._session.execute(query)).mappings().first()
        if row is None:
            return None
        b = t.bonus_tiers.c
        tiers = await self._session.execute(
            sa.select(b.min_pay_fen, b.bonus_fen)
            .where(b.rule_version == row["version"])
            .order_by(b.min_pay_fen)
        )
        return RechargeRule(
            row["version"],
            tuple(BonusTier(min_pay, bonus) for min_pay, bonus in tiers),
            Limits(row["min_pay_fen"], row["max_pay_fen"], row["balance_cap_fen"]),
            utc(row["created_at"]),
        )

    async def add(self, rule: RechargeRule) -> None:
        await self._session.execute(sa.insert(t.recharge_rules).values(
            version=rule.version, min_pay_fen=rule.limits.min_pay_fen, max_pay_fen=rule.limits.max_pay_fen,
            balance_cap_fen=rule.limits.balance_cap_fen, created_at=rule.created_at,
        ))
        if rule.tiers:
            await self._session.execute(sa.insert(t.bonus_tiers), [
                {"rule_version": rule.version, "min_pay_fen": tier.min_pay_fen, "bonus_fen": tier.bonus_fen}
                for tier in rule.tiers
            ])
