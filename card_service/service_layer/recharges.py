"""Use cases of pre-recharges: start, confirm, void, get.

Each mutating case takes the order number's lock, then the card's lock, then reads the state,
decides, and commits what the decision implies as one write transaction; so confirm, void and a
late pre-recharge of one order (and every credit or spend of one card) happen one after the other.
A happy-path pre-recharge or confirm is one write transaction (one ``commit``).

Merchants: a pre-recharge names its merchant, and the card must be that merchant's (another
merchant's card is refused exactly as a missing one); the bonus follows that merchant's rule.
Confirm, void and get may name a merchant: another merchant's record is then not found and
nothing changes. Order numbers are global, so the order number alone finds the record.
"""

from __future__ import annotations

from card_service.domain import ledger
from card_service.domain.commands import (
    ConfirmRecharge,
    StartPreRecharge,
    VoidRecharge,
    optional_merchant,
)
from card_service.domain.recharges import PreRecharge
from card_service.service_layer.context import CardContext
from card_service.service_layer.locks import order_key
from card_service.service_layer.ports import RechargeRepository
from card_service.service_layer.rules import current_rule
from rc_common.errors import NotFound, Refused
from rc_common.logs import get_logger

log = get_logger("card.recharges")


async def pre_recharge(ctx: CardContext, cmd: StartPreRecharge) -> PreRecharge:
    """New: RECHARGING with the bonus of the merchant's current rule. A faithful replay (same
    card, pay amount and merchant) returns the stored record; any other use of the order number
    is refused."""
    async with ctx.locks.hold(order_key(cmd.order_no)), ctx.card_lock(cmd.card_no):
        async with ctx.uow(False) as uow:
            existing, card, pending = await uow.recharges.start_view(cmd.order_no, cmd.card_no)
            if existing is not None:
                existing.check_replay(cmd.card_no, cmd.pay_amount_fen, cmd.merchant_id)
                return existing
            if card is None or not card.visible_to(cmd.merchant_id):  # B cannot probe A's cards
                raise Refused("CARD_NOT_FOUND", f"no card {cmd.card_no}", card_no=cmd.card_no)
            rule = await current_rule(ctx, uow, cmd.merchant_id)
            recharge = ledger.start_pre_recharge(
                card, rule, ctx.defaults, cmd.order_no, cmd.pay_amount_fen, pending, ctx.clock()
            )
            uow.recharges.add(recharge)
            await uow.commit()
    ctx.owners.remember(order_key(cmd.order_no), recharge.card_no)
    log.info("pre_recharge_recorded", order_no=cmd.order_no, card_no=cmd.card_no,
             merchant_id=cmd.merchant_id, credit_fen=recharge.credit_amount_fen,
             rule_version=recharge.rule_version)
    return recharge


async def confirm_recharge(ctx: CardContext, cmd: ConfirmRecharge) -> PreRecharge:
    """RECHARGING -> SUCCEEDED plus the credit; a terminal record is returned as it is."""
    async with ctx.locks.hold(order_key(cmd.order_no)):
        card_no = await _card_of_order(ctx, cmd.order_no)
        if card_no is None:
            raise _not_found(cmd.order_no)
        async with ctx.card_lock(card_no), ctx.uow(False) as uow:
            found = await uow.recharges.get_with_card(cmd.order_no)
            if found is None:  # a tombstone: VOIDED, no card
                return await _get(uow.recharges, cmd.order_no, cmd.merchant_id)
            recharge, card = found
            if not recharge.visible_to(cmd.merchant_id):
                raise _not_found(cmd.order_no)
            if recharge.is_terminal:
                return recharge
            entries = ledger.confirm_recharge(card, recharge, ctx.clock())
            uow.recharges.save(recharge)  # fenced: a void in between makes this stale
            uow.cards.save(card)
            uow.journal.append(entries)
            await uow.commit()
    log.info("recharge_confirmed", order_no=cmd.order_no, card_no=card_no,
             credit_fen=recharge.credit_amount_fen, balance_after_fen=entries[-1].balance_after_fen)
    return recharge


async def void_recharge(ctx: CardContext, cmd: VoidRecharge) -> PreRecharge:
    """RECHARGING -> VOIDED; unknown order numbers leave a VOIDED tombstone (recording the merchant
    named, if any); terminal ones stay."""
    async with ctx.locks.hold(order_key(cmd.order_no)):
        card_no = await _card_of_order(ctx, cmd.order_no)
        async with ctx.card_lock(card_no or ""), ctx.uow(False) as uow:
            recharge = await uow.recharges.get(cmd.order_no)
            now = ctx.clock()
            if recharge is None:
                recharge = PreRecharge.tombstone_for(cmd.order_no, cmd.merchant_id, cmd.reason, now)
                uow.recharges.add(recharge)
            elif not recharge.visible_to(cmd.merchant_id):
                raise _not_found(cmd.order_no)
            elif recharge.is_terminal:
                return recharge
            else:
                recharge.void(cmd.reason, now)
                uow.recharges.save(recharge)
            await uow.commit()
    ctx.owners.remember(order_key(cmd.order_no), recharge.card_no)
    log.info("recharge_voided", order_no=cmd.order_no, card_no=recharge.card_no,
             merchant_id=recharge.merchant_id, tombstone=recharge.tombstone, reason=cmd.reason)
    return recharge


async def get_recharge(ctx: CardContext, order_no: str, merchant_id: str = "") -> PreRecharge:
    """The record; naming a merchant, another merchant's record is not found."""
    optional_merchant(merchant_id)
    async with ctx.uow(True) as uow:
        return await _get(uow.recharges, order_no, merchant_id)


async def _card_of_order(ctx: CardContext, order_no: str) -> str | None:
    """The card an order number belongs to ('' for a tombstone), or None when unknown."""
    owner = ctx.owners.get(order_key(order_no))
    if owner is not None:
        return owner
    async with ctx.uow(True) as uow:
        recharge = await uow.recharges.get(order_no)
    if recharge is None:
        return None
    ctx.owners.remember(order_key(order_no), recharge.card_no)
    return recharge.card_no


async def _get(recharges: RechargeRepository, order_no: str, merchant_id: str) -> PreRecharge:
    found = await recharges.get(order_no)
    if found is None or not found.visible_to(merchant_id):
        raise _not_found(order_no)
    return found


def _not_found(order_no: str) -> NotFound:
    """Unknown, or another merchant's: the same answer."""
    return NotFound(f"no pre-recharge for order {order_no}")
