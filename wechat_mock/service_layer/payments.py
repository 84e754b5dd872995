"""Use cases of payment orders: create prepay, pay (the customer), query, close."""

from __future__ import annotations

from rc_common.errors import NotFound
from rc_common.logs import get_logger
from wechat_mock.domain import ids, validation
from wechat_mock.domain.merchants import Merchant, MerchantRef
from wechat_mock.domain.notifications import transaction_draft
from wechat_mock.domain.payments import PaymentOrder, PrepayTerms
from wechat_mock.service_layer import commands
from wechat_mock.service_layer.context import Context
from wechat_mock.service_layer.ports import Duplicate
from wechat_mock.service_layer.unit_of_work import UnitOfWork, retrying

log = get_logger("wechat.payments")


def order_not_found(out_trade_no: str) -> NotFound:
    return NotFound(f"ORDER_NOT_EXIST: no order with out_trade_no {out_trade_no}")


async def load_order(uow: UnitOfWork, out_trade_no: str, merchant: Merchant | None = None) -> PaymentOrder:
    """The order; NOT_FOUND (ORDER_NOT_EXIST) when there is none or, given ``merchant``, when it
    is another merchant's (WeChat answers the same: its orders are per merchant)."""
    order = await uow.orders.get(out_trade_no)
    if order is None or (merchant is not None and not order.belongs_to(merchant)):
        raise order_not_found(out_trade_no)
    return order


async def create_prepay(cmd: commands.CreatePrepay, ctx: Context) -> PaymentOrder:
    """A new order, or the same order again for an identical request (same prepay id).

    The insert goes first (one write, no read, on the usual path); only a taken out_trade_no
    reads the order already there, which answers if the request is the same (and the same
    merchant's: out_trade_no is unique across merchants)."""
    merchant = ctx.accounts.require(cmd.merchant)
    appid = ctx.accounts.appid(merchant)
    validation.out_trade_no(cmd.out_trade_no)
    validation.positive_fen(cmd.amount_total_fen, "amount_total_fen")
    validation.notify_url(cmd.notify_url)
    terms = PrepayTerms(
        description=cmd.description,
        amount_total_fen=cmd.amount_total_fen,
        payer_openid=cmd.payer_openid,
        time_expire=validation.optional_time(cmd.time_expire, "time_expire"),
        attach=cmd.attach,
    )

    async def attempt() -> PaymentOrder:
        now = ctx.clock()
        order = PaymentOrder(
            cmd.out_trade_no,
            ids.prepay_id(now),
            terms,
            created_at=now,
            merchant=merchant,
            appid=appid,
            notify_url=cmd.notify_url,
        )
        async with ctx.uow() as uow:
            uow.orders.add(order)
            try:
                await uow.commit()
            except Duplicate:
                existing = await uow.orders.get(cmd.out_trade_no)
                if existing is None:
                    raise
                existing.check_replay(terms, merchant)
                return existing
        log.info(
            "prepay_created",
            out_trade_no=order.out_trade_no,
            amount_fen=terms.amount_total_fen,
            mchid=merchant.own_mchid,
            mode=merchant.mode.value,
        )
        return order

    return await retrying(attempt)


async def pay(cmd: commands.Pay, ctx: Context) -> PaymentOrder:
    """The customer pays: NOTPAY -> SUCCESS and a TRANSACTION.SUCCESS notification, in one commit.
    Paying a paid order again returns the transaction (no second payment, no new notification).
    The order is written only over the version read, so of concurrent payments one takes the
    money and the others, re-run, find it paid."""
    validation.out_trade_no(cmd.out_trade_no)

    async def attempt() -> PaymentOrder:
        async with ctx.uow() as uow:
            order = await load_order(uow, cmd.out_trade_no)
            now = ctx.clock()
            if not order.pay(now, cmd.payer_openid, ids.transaction_id(now)):
                return order
            uow.orders.update(order)
            uow.notifications.add(ctx.wire.seal(transaction_draft(order), now))
            await uow.commit()
        log.info("order_paid", out_trade_no=order.out_trade_no, transaction_id=order.transaction_id)
        return order

    return await retrying(attempt)


async def query_order(out_trade_no: str, merchant_ref: MerchantRef, ctx: Context) -> PaymentOrder:
    """The merchant's order; another merchant's is NOT_FOUND, as a missing one."""
    merchant = ctx.accounts.require(merchant_ref)
    validation.out_trade_no(out_trade_no)
    async with ctx.uow(readonly=True) as uow:
        return await load_order(uow, out_trade_no, merchant)


async def close_order(cmd: commands.CloseOrder, ctx: Context) -> PaymentOrder:
    """Close an unpaid order (idempotent); refused with ORDER_PAID on a paid one; another
    merchant's order is NOT_FOUND and stays as it is."""
    merchant = ctx.accounts.require(cmd.merchant)
    validation.out_trade_no(cmd.out_trade_no)

    async def attempt() -> PaymentOrder:
        async with ctx.uow() as uow:
            order = await load_order(uow, cmd.out_trade_no, merchant)
            if order.close(ctx.clock()):
                uow.orders.update(order)
                await uow.commit()
                log.info("order_closed", out_trade_no=order.out_trade_no)
            return order

    return await retrying(attempt)
