"""The journal export for reconciliation: every entry of one business day (+08:00), of one
merchant's cards or all, in entry order, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from card_service.domain.commands import optional_merchant
from card_service.domain.journal import JournalEntry, JournalKind
from card_service.service_layer.context import CardContext
from rc_common.business_day import day_bounds, parse_day
from rc_common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 2000


@dataclass(frozen=True)
class ExportedEntry:
    entry: JournalEntry
    merchant_id: str


@dataclass(frozen=True)
class ExportPage:
    entries: list[ExportedEntry]
    #: Pass as ``after_entry_id`` for the next page; 0 when this was the last one.
    next_after_entry_id: int


def _day(text: str) -> tuple[datetime, datetime]:
    try:
        return day_bounds(parse_day(text))
    except ValueError as exc:
        raise InvalidArgument("date", str(exc)) from exc


async def export_journal(
    ctx: CardContext, date: str, merchant_id: str, after_entry_id: int, page_size: int
) -> ExportPage:
    """One page of the day's entries after ``after_entry_id``; page_size 0 means the default,
    larger than the cap means the cap."""
    start, end = _day(date)
    optional_merchant(merchant_id)
    if page_size < 0:
        raise InvalidArgument("page_size", "must not be negative")
    limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    async with ctx.uow(True) as uow:
        rows = await uow.journal.day_page(start, end, merchant_id, after_entry_id, limit + 1)
    entries = [ExportedEntry(entry, merchant) for entry, merchant in rows[:limit]]
    more = len(rows) > limit
    page = ExportPage(entries, (entries[-1].entry.entry_id or 0) if more else 0)
    return ctx.alter_export(page)


def plant_extra_entry(page: ExportPage, merchant_id: str, at: datetime, serial: int) -> ExportPage:
    """A fault for reconciliation tests: the page gains a principal credit of 1 fen for an order
    nobody paid (``EXTRA-CREDIT-<serial>``); the ledger itself is untouched."""
    key = f"EXTRA-CREDIT-{serial}"
    fake = JournalEntry("EXTRA-CARD", JournalKind.RECHARGE_PRINCIPAL, 1, 1, key, at, -serial)
    return ExportPage([*page.entries, ExportedEntry(fake, merchant_id)], page.next_after_entry_id)
