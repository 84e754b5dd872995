"""The journal export of one business day (+08:00): the merchant's entries of that day only, paged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from card_service.domain import commands
from card_service.domain.journal import JournalKind
from card_service.entrypoints import mappers
from card_service.service_layer import export, recharges
from card_service.service_layer.context import CardContext
from rc_common.errors import InvalidArgument
from tests.integration.card_service.conftest import MERCHANT, open_card

#: 2026-11-29 23:30 in +08:00; its business day is 2026-11-29.
LATE_EVENING = datetime(2026, 11, 29, 15, 30, tzinfo=UTC)
#: 2026-11-30 00:10 in +08:00.
AFTER_MIDNIGHT = datetime(2026, 11, 29, 16, 10, tzinfo=UTC)


async def credit(ctx: CardContext, order_no: str, card_no: str, merchant: str = MERCHANT) -> None:
    await recharges.pre_recharge(ctx, commands.StartPreRecharge(order_no, card_no, 1_000, merchant))
    await recharges.confirm_recharge(ctx, commands.ConfirmRecharge(order_no))


async def test_the_export_lists_the_days_entries_of_one_merchant_page_by_page(ctx: CardContext) -> None:
    await open_card(ctx, "6200000000000001")
    await open_card(ctx, "6200000000000002", "m-other")
    ctx.clock = lambda: LATE_EVENING
    await credit(ctx, "DAY-1", "6200000000000001")
    await credit(ctx, "DAY-2", "6200000000000001")
    await credit(ctx, "OTHER-1", "6200000000000002", "m-other")
    ctx.clock = lambda: AFTER_MIDNIGHT
    await credit(ctx, "NEXT-1", "6200000000000001")

    keys: list[str] = []
    after = 0
    while True:
        page = await export.export_journal(ctx, "2026-11-29", MERCHANT, after, 1)
        keys += [item.entry.business_key for item in page.entries]
        assert all(item.merchant_id == MERCHANT for item in page.entries)
        assert all(item.entry.kind is JournalKind.RECHARGE_PRINCIPAL for item in page.entries)
        after = page.next_after_entry_id
        if not after:
            break
    assert keys == ["DAY-1", "DAY-2"]
    every = await export.export_journal(ctx, "2026-11-29", "", 0, 0)
    assert sorted(item.entry.business_key for item in every.entries) == ["DAY-1", "DAY-2", "OTHER-1"]
    next_day = await export.export_journal(ctx, "2026-11-30", MERCHANT, 0, 0)
    assert [item.entry.business_key for item in next_day.entries] == ["NEXT-1"]


async def test_a_bad_date_or_another_exports_token_is_refused(ctx: CardContext) -> None:
    with pytest.raises(InvalidArgument):
        await export.export_journal(ctx, "29/11/2026", MERCHANT, 0, 0)
    token = mappers.export_token("2026-11-29", MERCHANT, 7)
    assert mappers.export_after("2026-11-29", MERCHANT, token) == 7
    with pytest.raises(InvalidArgument):
        mappers.export_after("2026-11-30", MERCHANT, token)
    with pytest.raises(InvalidArgument):
        mappers.export_after("2026-11-29", "m-other", token)
