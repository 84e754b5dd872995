"""Use cases of cards: open, freeze, unfreeze, close, get, and the journal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from card_service.domain.cards import Card
from card_service.domain.commands import OpenCard, optional_merchant, required
from card_service.domain.journal import JournalEntry
from card_service.service_layer.context import CardContext
from card_service.service_layer.locks import card_key
from card_service.service_layer.ports import AlreadyExists, UnitOfWork
from rc_common.errors import InvalidArgument, NotFound, Refused
from rc_common.logs import get_logger

log = get_logger("card.cards")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class CardView:
    card: Card
    #: Sum of credit amounts of the card's RECHARGING pre-recharges.
    pending_recharge_fen: int


@dataclass(frozen=True)
class JournalPage:
    entries: list[JournalEntry]
    #: Pass as ``after_entry_id`` for the next page; 0 when this was the last one.
    next_after_entry_id: int


async def open_card(ctx: CardContext, cmd: OpenCard) -> CardView:
    """A new ACTIVE card of the merchant with a zero balance; a number already taken (by any
    merchant: card numbers are global) is refused."""
    async with ctx.locks.hold(card_key(cmd.card_no)), ctx.uow(False) as uow:
        card = Card.open(cmd.card_no, cmd.merchant_id, cmd.holder_name, ctx.clock())
        uow.cards.add(card)
        try:
            await uow.commit()
        except AlreadyExists:
            raise Refused("CARD_EXISTS", f"card {cmd.card_no} already exists", card_no=cmd.card_no) from None
    log.info("card_opened", card_no=cmd.card_no, merchant_id=cmd.merchant_id)
    return CardView(card, 0)


async def freeze_card(ctx: CardContext, card_no: str) -> CardView:
    return await _change_status(ctx, card_no, Card.freeze)


async def unfreeze_card(ctx: CardContext, card_no: str) -> CardView:
    return await _change_status(ctx, card_no, Card.unfreeze)


async def close_card(ctx: CardContext, card_no: str) -> CardView:
    return await _change_status(ctx, card_no, Card.close)


async def _change_status(
    ctx: CardContext, card_no: str, change: Callable[[Card, datetime], None]
) -> CardView:
    required("card_no", card_no)
    async with ctx.locks.hold(card_key(card_no)), ctx.uow(False) as uow:
        card = await _card(uow, card_no)
        pending = await uow.recharges.pending_credit_fen(card_no)
        before = card.status
        change(card, ctx.clock())
        if card.status is not before:
            uow.cards.save(card)
        await uow.commit()
    if card.status is not before:
        log.info("card_status_changed", card_no=card_no, before=before.name, after=card.status.name)
    return CardView(card, pending)


async def get_card(ctx: CardContext, card_no: str, merchant_id: str = "") -> CardView:
    """The card and its pending credits; naming a merchant, another merchant's card is not found."""
    required("card_no", card_no)
    optional_merchant(merchant_id)
    async with ctx.uow(True) as uow:
        card = await _card(uow, card_no, merchant_id)
        return CardView(card, await uow.recharges.pending_credit_fen(card_no))


async def list_journal(
    ctx: CardContext, card_no: str, after_entry_id: int, page_size: int, merchant_id: str = ""
) -> JournalPage:
    """Entries in ``entry_id`` order after ``after_entry_id``; page_size 0 means the default.
    Naming a merchant, another merchant's card is not found."""
    required("card_no", card_no)
    optional_merchant(merchant_id)
    if page_size < 0:
        raise InvalidArgument("page_size", "must not be negative")
    limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    async with ctx.uow(True) as uow:
        await _card(uow, card_no, merchant_id)
        rows = await uow.journal.page(card_no, after_entry_id, limit + 1)
    entries = rows[:limit]
    more = len(rows) > limit
    return JournalPage(entries, (entries[-1].entry_id or 0) if more else 0)


async def _card(uow: UnitOfWork, card_no: str, merchant_id: str = "") -> Card:
    """The card; missing, or another merchant's when one is named: NotFound (the same answer)."""
    card = await uow.cards.get(card_no)
    if card is None or not card.visible_to(merchant_id):
        raise NotFound(f"no card {card_no}")
    return card
