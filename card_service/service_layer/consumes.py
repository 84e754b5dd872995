"""Use cases of spending: consume (idempotent by request id) and reverse it once."""

from __future__ import annotations

from card_service.domain import ledger
from card_service.domain.commands import Consume, ReverseConsume
from card_service.domain.consumptions import Consumption, ConsumptionStatus
from card_service.service_layer.context import CardContext
from card_service.service_layer.locks import consume_key
from rc_common.errors import NotFound, Refused
from rc_common.logs import get_logger

log = get_logger("card.consumes")


async def consume(ctx: CardContext, cmd: Consume) -> Consumption:
    """Spends at once under the card's lock; a replay returns the stored consumption. Naming a
    merchant, another merchant's card is refused exactly as a missing one (CARD_NOT_FOUND)."""
    async with ctx.locks.hold(consume_key(cmd.request_id)), ctx.card_lock(cmd.card_no):
        async with ctx.uow(False) as uow:
            existing = await uow.consumptions.get(cmd.request_id)
            if existing is not None:
                if not existing.same_request(cmd.card_no, cmd.amount_fen, cmd.merchant_id):
                    raise Refused(
                        "REQUEST_ID_CONFLICT",
                        f"request {cmd.request_id} was used with other parameters",
                        request_id=cmd.request_id,
                    )
                return existing
            card = await uow.cards.get(cmd.card_no)
            if card is None or not card.visible_to(cmd.merchant_id):
                raise Refused("CARD_NOT_FOUND", f"no card {cmd.card_no}", card_no=cmd.card_no)
            consumption, entry = ledger.consume(
                card, cmd.request_id, cmd.amount_fen, cmd.merchant_id, ctx.clock()
            )
            uow.cards.save(card)
            uow.consumptions.add(consumption)
            uow.journal.append([entry])
            await uow.commit()
    ctx.owners.remember(consume_key(cmd.request_id), cmd.card_no)
    log.info("consumed", request_id=cmd.request_id, card_no=cmd.card_no, amount_fen=cmd.amount_fen,
             balance_after_fen=consumption.balance_after_fen)
    return consumption


async def reverse_consume(ctx: CardContext, cmd: ReverseConsume) -> Consumption:
    """COMPLETED -> REVERSED with a CONSUME_REVERSAL entry; a REVERSED one is returned as it is."""
    async with ctx.locks.hold(consume_key(cmd.request_id)):
        card_no = ctx.owners.get(consume_key(cmd.request_id))
        if card_no is None:
            async with ctx.uow(True) as uow:
                found = await uow.consumptions.get(cmd.request_id)
            if found is None:
                raise NotFound(f"no consumption {cmd.request_id}")
            card_no = found.card_no
        async with ctx.card_lock(card_no), ctx.uow(False) as uow:
            consumption = await uow.consumptions.get(cmd.request_id)
            assert consumption is not None, "consumptions are never deleted"
            if consumption.status is ConsumptionStatus.REVERSED:
                return consumption
            card = await uow.cards.get(card_no)
            assert card is not None, "a consumption always names an existing card"
            entry = ledger.reverse_consumption(card, consumption, ctx.clock())
            uow.cards.save(card)
            uow.consumptions.save(consumption)
            uow.journal.append([entry])
            await uow.commit()
    log.info("consume_reversed", request_id=cmd.request_id, card_no=card_no,
             balance_after_fen=consumption.balance_after_fen)
    return consumption
