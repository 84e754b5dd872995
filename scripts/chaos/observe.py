"""Observe a quiet system through public RPCs only, into a :class:`scripts.chaos.invariants.Observation`.

Orders (``ListRechargeOrders``, kept to the run's cards), each order's timeline, its pre-recharge
(``GetRecharge``) and WeChat's view (``QueryOrder``); each card and its whole journal; WeChat's
trade bill for today and yesterday (+08:00) and ``QueryRefund`` for every refund number seen.
Calls are bounded in concurrency and retried while their outcome is unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import TypeVar

from protos.card.v1 import card_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from rc_common.outcomes import Done, Rejected
from scripts.chaos import invariants as inv
from scripts.chaos.rpc import Stubs, retrying

T = TypeVar("T")
SHANGHAI = timezone(timedelta(hours=8))


def order_status(value: recharge_pb2.OrderStatus.ValueType) -> str:
    return recharge_pb2.OrderStatus.Name(value).removeprefix("ORDER_STATUS_")


async def list_orders(stubs: Stubs, cards: Collection[str] | None = None) -> list[recharge_pb2.RechargeOrder]:
    """Every order (of ``cards`` when given), following pages."""
    orders: list[recharge_pb2.RechargeOrder] = []
    token = ""
    while True:
        request = recharge_pb2.ListRechargeOrdersRequest(
            page=recharge_pb2.PageRequest(page_size=500, page_token=token)
        )
        outcome = await retrying(partial(stubs.center.ListRechargeOrders, request, timeout=30), attempts=20)
        if not isinstance(outcome, Done):
            raise RuntimeError(f"ListRechargeOrders failed: {outcome}")
        orders.extend(o for o in outcome.value.orders if cards is None or o.card_no in cards)
        token = outcome.value.next_page_token
        if not token:
            return orders


async def _bounded(calls: Iterable[Callable[[], Awaitable[T]]], limit: int = 16) -> list[T]:
    slots = asyncio.Semaphore(limit)

    async def one(make: Callable[[], Awaitable[T]]) -> T:
        async with slots:
            return await make()

    return list(await asyncio.gather(*(one(c) for c in calls)))


def _order(o: recharge_pb2.RechargeOrder) -> inv.Order:
    return inv.Order(
        o.order_no, o.card_no, order_status(o.status), o.pay_amount_fen, o.bonus_fen, o.credit_amount_fen,
        o.failure_reason, o.out_refund_no, o.transaction_id, o.idempotency_key,
    )


async def _timeline(stubs: Stubs, order_no: str) -> list[inv.TimelineEvent]:
    request = recharge_pb2.GetOrderTimelineRequest(order_no=order_no)
    outcome = await retrying(lambda: stubs.ops.GetOrderTimeline(request, timeout=10), attempts=20)
    if not isinstance(outcome, Done):
        return []
    return [
        inv.TimelineEvent(
            e.seq, e.kind, order_status(e.from_status), order_status(e.to_status), e.method, e.outcome,
            e.detail, e.error, e.actor,
        )
        for e in outcome.value.events
    ]


async def _pre_recharge(stubs: Stubs, order: inv.Order) -> inv.PreRecharge:
    request = card_pb2.GetRechargeRequest(order_no=order.order_no)
    outcome = await retrying(lambda: stubs.card.GetRecharge(request, timeout=10), attempts=20)
    if not isinstance(outcome, Done):
        return inv.PreRecharge(order.order_no, order.card_no, "MISSING")
    p = outcome.value
    status = card_pb2.PreRechargeStatus.Name(p.status).removeprefix("PRE_RECHARGE_STATUS_")
    return inv.PreRecharge(
        p.order_no, p.card_no, status, p.pay_amount_fen, p.bonus_fen, p.credit_amount_fen, p.tombstone
    )


async def _trade(stubs: Stubs, order_no: str) -> inv.Trade:
    request = wechatpay_pb2.QueryOrderRequest(out_trade_no=order_no)
    outcome = await retrying(lambda: stubs.gateway.QueryOrder(request, timeout=10), attempts=20)
    if isinstance(outcome, Rejected) and outcome.code == "NOT_FOUND":
        return inv.Trade(order_no, "NOT_FOUND")
    if not isinstance(outcome, Done):
        return inv.Trade(order_no, f"UNOBSERVED({outcome.code})")
    t = outcome.value
    state = wechatpay_pb2.TradeState.Name(t.trade_state).removeprefix("TRADE_STATE_")
    return inv.Trade(order_no, state, t.amount_total_fen, t.refunded_fen)


async def _card(stubs: Stubs, card_no: str) -> tuple[inv.Card, list[inv.JournalEntry]]:
    outcome = await retrying(
        lambda: stubs.card.GetCard(card_pb2.GetCardRequest(card_no=card_no), timeout=10), attempts=20
    )
    if not isinstance(outcome, Done):
        raise RuntimeError(f"GetCard {card_no} failed: {outcome}")
    c = outcome.value
    card = inv.Card(
        c.card_no, card_pb2.CardStatus.Name(c.status).removeprefix("CARD_STATUS_"), c.balance_fen,
        c.pending_recharge_fen,
    )
    entries: list[inv.JournalEntry] = []
    token = ""
    while True:
        request = card_pb2.ListJournalRequest(card_no=card_no, page_size=500, page_token=token)
        page = await retrying(partial(stubs.card.ListJournal, request, timeout=10), attempts=20)
        if not isinstance(page, Done):
            raise RuntimeError(f"ListJournal {card_no} failed: {page}")
        entries.extend(
            inv.JournalEntry(
                e.entry_id, e.card_no, card_pb2.JournalKind.Name(e.kind).removeprefix("JOURNAL_KIND_"),
                e.amount_fen, e.balance_after_fen, e.business_key,
            )
            for e in page.value.entries
        )
        token = page.value.next_page_token
        if not token:
            return card, entries


async def _bill(stubs: Stubs, day: str) -> list[inv.BillRow]:
    request = wechatpay_pb2.DownloadTradeBillRequest(bill_date=day)
    outcome = await retrying(lambda: stubs.gateway.DownloadTradeBill(request, timeout=30), attempts=20)
    if not isinstance(outcome, Done):
        raise RuntimeError(f"DownloadTradeBill {day} failed: {outcome}")
    return [
        inv.BillRow(
            r.out_trade_no, r.trade_state, r.amount_total_fen, r.out_refund_no, r.refund_fen, r.refund_status,
            r.transaction_id, r.trade_time,
        )
        for r in outcome.value.rows
    ]


async def _refund(stubs: Stubs, out_refund_no: str) -> inv.Refund | None:
    request = wechatpay_pb2.QueryRefundRequest(out_refund_no=out_refund_no)
    outcome = await retrying(lambda: stubs.gateway.QueryRefund(request, timeout=10), attempts=20)
    if not isinstance(outcome, Done):
        return None
    r = outcome.value
    status = wechatpay_pb2.RefundStatus.Name(r.status).removeprefix("REFUND_STATUS_")
    return inv.Refund(r.out_refund_no, r.out_trade_no, status, r.refund_fen)


def bill_dates(now: datetime | None = None) -> list[str]:
    today = (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI).date()
    return [(today - timedelta(days=1)).isoformat(), today.isoformat()]


async def observe(stubs: Stubs, cards: Collection[str], driver: inv.DriverLog) -> inv.Observation:
    card_set = set(cards)
    orders = [_order(o) for o in await list_orders(stubs, card_set)]
    order_nos = [o.order_no for o in orders]
    timelines = await _bounded(partial(_timeline, stubs, no) for no in order_nos)
    pres = await _bounded(partial(_pre_recharge, stubs, o) for o in orders)
    trades = await _bounded(partial(_trade, stubs, no) for no in order_nos)
    card_views = await _bounded(partial(_card, stubs, c) for c in sorted(card_set))
    mine = set(order_nos)
    rows = [r for day in bill_dates() for r in await _bill(stubs, day) if r.out_trade_no in mine]
    refund_nos = sorted({r.out_refund_no for r in rows if r.out_refund_no} |
                        {o.out_refund_no for o in orders if o.out_refund_no})
    refunds = [r for r in await _bounded(partial(_refund, stubs, n) for n in refund_nos) if r is not None]
    return inv.Observation(
        orders=orders,
        timelines=dict(zip(order_nos, timelines, strict=True)),
        pre_recharges={p.order_no or o.order_no: p for o, p in zip(orders, pres, strict=True)},
        cards={card.card_no: card for card, _ in card_views},
        journals={card.card_no: entries for card, entries in card_views},
        bill_rows=rows,
        trades={t.out_trade_no: t for t in trades},
        refunds={r.out_refund_no: r for r in refunds},
        driver=driver,
    )
