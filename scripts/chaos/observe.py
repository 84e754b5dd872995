"""Observe a quiet system through public RPCs only, into a :class:`scripts.chaos.invariants.Observation`.

Every call names the merchant it acts for. Per merchant: its orders (``ListRechargeOrders``, kept
to the run's cards), its anomalies, its WeChat trade bill for today and yesterday (+08:00). Per
order, as the order's merchant: its timeline, its pre-recharge (``GetRecharge``), WeChat's view
(``QueryOrder``) and ``QueryRefund`` for every refund number seen. Per card, as the card's
merchant: the card and its whole journal. Then a sample of orders and cards is read as each
*other* merchant, every answer recorded (:class:`scripts.chaos.invariants.CrossRead`).

One deliberate exception: when a pre-recharge or card is NOT_FOUND as its own merchant, it is
looked up once more without naming one (the card system's operator view) so the checker can say
whose it turned out to be, instead of only that it is missing.

Calls are bounded in concurrency and retried while their outcome is unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, TypeVar

from protos.card.v1 import card_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from rc_common.outcomes import Done, Rejected, Unknown
from scripts.chaos import invariants as inv
from scripts.chaos.rpc import Stubs, retrying

T = TypeVar("T")
SHANGHAI = timezone(timedelta(hours=8))
#: Orders per merchant read as each other merchant.
CROSS_SAMPLE = 3


def order_status(value: recharge_pb2.OrderStatus.ValueType) -> str:
    return recharge_pb2.OrderStatus.Name(value).removeprefix("ORDER_STATUS_")


def wechat_ref(account: inv.MerchantAccount, sp_mchid: str) -> wechatpay_pb2.MerchantRef:
    """Who a WeChat Pay request acts for: the merchant's mchid (direct), or the provider's
    ``sp_mchid`` with the merchant as sub_mchid (partner)."""
    if account.mode == "direct":
        return wechatpay_pb2.MerchantRef(mchid=account.mchid)
    return wechatpay_pb2.MerchantRef(sp_mchid=sp_mchid, sub_mchid=account.mchid)


def own_mchid(merchant: wechatpay_pb2.MerchantRef | wechatpay_pb2.Transaction) -> str:
    """The merchant's own WeChat id in an answer: its mchid (direct) or sub_mchid (partner)."""
    return merchant.mchid or merchant.sub_mchid


async def list_orders_as(
    stubs: Stubs, merchant_id: str, cards: Collection[str] | None = None
) -> list[recharge_pb2.RechargeOrder]:
    """Every order ListRechargeOrders shows the merchant (of ``cards`` when given), following pages."""
    orders: list[recharge_pb2.RechargeOrder] = []
    token = ""
    while True:
        request = recharge_pb2.ListRechargeOrdersRequest(
            merchant_id=merchant_id, page=recharge_pb2.PageRequest(page_size=500, page_token=token)
        )
        outcome = await retrying(partial(stubs.center.ListRechargeOrders, request, timeout=30), attempts=20)
        if not isinstance(outcome, Done):
            raise RuntimeError(f"ListRechargeOrders as {merchant_id} failed: {outcome}")
        orders.extend(o for o in outcome.value.orders if cards is None or o.card_no in cards)
        token = outcome.value.next_page_token
        if not token:
            return orders


async def list_orders(
    stubs: Stubs, merchant_ids: Iterable[str], cards: Collection[str] | None = None
) -> list[recharge_pb2.RechargeOrder]:
    """Every merchant's orders (of ``cards`` when given)."""
    return [o for m in merchant_ids for o in await list_orders_as(stubs, m, cards)]


async def _anomalies_as(stubs: Stubs, merchant_id: str) -> list[str]:
    numbers: list[str] = []
    token = ""
    while True:
        request = recharge_pb2.ListAnomaliesRequest(
            merchant_id=merchant_id, page=recharge_pb2.PageRequest(page_size=500, page_token=token)
        )
        outcome = await retrying(partial(stubs.ops.ListAnomalies, request, timeout=30), attempts=20)
        if not isinstance(outcome, Done):
            raise RuntimeError(f"ListAnomalies as {merchant_id} failed: {outcome}")
        numbers.extend(a.order.order_no for a in outcome.value.anomalies)
        token = outcome.value.next_page_token
        if not token:
            return numbers


async def _bounded(calls: Iterable[Callable[[], Awaitable[T]]], limit: int = 16) -> list[T]:
    slots = asyncio.Semaphore(limit)

    async def one(make: Callable[[], Awaitable[T]]) -> T:
        async with slots:
            return await make()

    return list(await asyncio.gather(*(one(c) for c in calls)))


def _order(o: recharge_pb2.RechargeOrder) -> inv.Order:
    return inv.Order(
        o.order_no, o.card_no, order_status(o.status), o.pay_amount_fen, o.bonus_fen, o.credit_amount_fen,
        o.failure_reason, o.out_refund_no, o.transaction_id, o.idempotency_key, o.merchant_id,
    )


async def _timeline(stubs: Stubs, order: inv.Order) -> list[inv.TimelineEvent]:
    request = recharge_pb2.GetOrderTimelineRequest(order_no=order.order_no, merchant_id=order.merchant_id)
    outcome = await retrying(lambda: stubs.ops.GetOrderTimeline(request, timeout=10), attempts=20)
    if not isinstance(outcome, Done):
        return []
    return [
        inv.TimelineEvent(
            e.seq, e.kind, order_status(e.from_status), order_status(e.to_status), e.method, e.outcome,
            e.detail, e.error, e.actor, e.node, e.at.seconds + e.at.nanos / 1e9, e.latency_ms,
        )
        for e in outcome.value.events
    ]


async def _get_recharge(stubs: Stubs, order_no: str, merchant_id: str) -> Done[Any] | Rejected | Unknown:
    request = card_pb2.GetRechargeRequest(order_no=order_no, merchant_id=merchant_id)
    return await retrying(lambda: stubs.card.GetRecharge(request, timeout=10), attempts=20)


async def _pre_recharge(stubs: Stubs, order: inv.Order) -> inv.PreRecharge:
    outcome = await _get_recharge(stubs, order.order_no, order.merchant_id)
    if isinstance(outcome, Rejected) and outcome.code == "NOT_FOUND":
        outcome = await _get_recharge(stubs, order.order_no, "")  # whose is it, if anyone's?
    if not isinstance(outcome, Done):
        return inv.PreRecharge(order.order_no, order.card_no, "MISSING")
    p = outcome.value
    status = card_pb2.PreRechargeStatus.Name(p.status).removeprefix("PRE_RECHARGE_STATUS_")
    return inv.PreRecharge(
        p.order_no, p.card_no, status, p.pay_amount_fen, p.bonus_fen, p.credit_amount_fen, p.tombstone,
        p.merchant_id,
    )


async def _trade(stubs: Stubs, order_no: str, merchant: wechatpay_pb2.MerchantRef | None) -> inv.Trade:
    if merchant is None:
        return inv.Trade(order_no, "UNOBSERVED(the order names none of the run's merchants)")
    request = wechatpay_pb2.QueryOrderRequest(out_trade_no=order_no, merchant=merchant)
    outcome = await retrying(lambda: stubs.gateway.QueryOrder(request, timeout=10), attempts=20)
    if isinstance(outcome, Rejected) and outcome.code == "NOT_FOUND":
        return inv.Trade(order_no, "NOT_FOUND")
    if not isinstance(outcome, Done):
        return inv.Trade(order_no, f"UNOBSERVED({outcome.code})")
    t = outcome.value
    state = wechatpay_pb2.TradeState.Name(t.trade_state).removeprefix("TRADE_STATE_")
    return inv.Trade(order_no, state, t.amount_total_fen, t.refunded_fen, own_mchid(t))


async def _get_card(stubs: Stubs, card_no: str, merchant_id: str) -> card_pb2.Card:
    async def get(as_merchant: str) -> Done[Any] | Rejected | Unknown:
        request = card_pb2.GetCardRequest(card_no=card_no, merchant_id=as_merchant)
        return await retrying(lambda: stubs.card.GetCard(request, timeout=10), attempts=20)

    outcome = await get(merchant_id)
    if isinstance(outcome, Rejected) and outcome.code == "NOT_FOUND":
        outcome = await get("")  # whose is it, if anyone's?
    if not isinstance(outcome, Done):
        raise RuntimeError(f"GetCard {card_no} failed: {outcome}")
    card: card_pb2.Card = outcome.value
    return card


async def _card(stubs: Stubs, card_no: str, merchant_id: str) -> tuple[inv.Card, list[inv.JournalEntry]]:
    c = await _get_card(stubs, card_no, merchant_id)
    card = inv.Card(
        c.card_no, card_pb2.CardStatus.Name(c.status).removeprefix("CARD_STATUS_"), c.balance_fen,
        c.pending_recharge_fen, c.merchant_id,
    )
    entries: list[inv.JournalEntry] = []
    token = ""
    while True:
        request = card_pb2.ListJournalRequest(
            card_no=card_no, page_size=500, page_token=token, merchant_id=c.merchant_id
        )
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


async def _bill(
    stubs: Stubs, day: str, account: inv.MerchantAccount, sp_mchid: str
) -> list[inv.BillRow]:
    request = wechatpay_pb2.DownloadTradeBillRequest(bill_date=day, merchant=wechat_ref(account, sp_mchid))
    outcome = await retrying(lambda: stubs.gateway.DownloadTradeBill(request, timeout=30), attempts=20)
    if not isinstance(outcome, Done):
        raise RuntimeError(f"DownloadTradeBill {day} of {account.merchant_id} failed: {outcome}")
    return [
        inv.BillRow(
            r.out_trade_no, r.trade_state, r.amount_total_fen, r.out_refund_no, r.refund_fen, r.refund_status,
            r.transaction_id, r.trade_time, r.mchid, account.merchant_id,
        )
        for r in outcome.value.rows
    ]


async def _refund(
    stubs: Stubs, out_refund_no: str, merchant: wechatpay_pb2.MerchantRef | None
) -> inv.Refund | None:
    if merchant is None:
        return None
    request = wechatpay_pb2.QueryRefundRequest(out_refund_no=out_refund_no, merchant=merchant)
    outcome = await retrying(lambda: stubs.gateway.QueryRefund(request, timeout=10), attempts=20)
    if not isinstance(outcome, Done):
        return None
    r = outcome.value
    status = wechatpay_pb2.RefundStatus.Name(r.status).removeprefix("REFUND_STATUS_")
    return inv.Refund(r.out_refund_no, r.out_trade_no, status, r.refund_fen, own_mchid(r.merchant))


def bill_dates(now: datetime | None = None) -> list[str]:
    today = (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI).date()
    return [(today - timedelta(days=1)).isoformat(), today.isoformat()]


def cross_sample(orders: Sequence[inv.Order], per_merchant: int = CROSS_SAMPLE) -> list[inv.Order]:
    """Up to ``per_merchant`` orders of each merchant, of different end states where it has them:
    credited first, then refunded (they have the most to leak: a pre-recharge, a card journal, a
    trade, a refund), then the others."""
    rank = {"CREDITED": 0, "REFUNDED": 1, "MANUAL_REVIEW": 2, "CLOSED": 3}
    chosen: list[inv.Order] = []
    for merchant_id in sorted({o.merchant_id for o in orders}):
        mine = sorted((o for o in orders if o.merchant_id == merchant_id), key=lambda o: o.order_no)
        firsts = {o.status: o for o in reversed(mine)}  # the first order of each state
        picked = sorted(firsts.values(), key=lambda o: (rank.get(o.status, 9), o.order_no))[:per_merchant]
        rest = [o for o in mine if o not in picked]
        chosen += picked + rest[: per_merchant - len(picked)]
    return chosen


#: One read made as another merchant: (call, subject, owner, reader, the call itself).
_Read = tuple[str, str, str, str, Callable[[], Awaitable[Any]]]


def _reads_of(order: inv.Order, reader: inv.MerchantAccount, stubs: Stubs, sp_mchid: str) -> list[_Read]:
    """The reads of ``order`` and its card made as ``reader``."""
    no, card_no, me = order.order_no, order.card_no, reader.merchant_id
    ref = wechat_ref(reader, sp_mchid)
    about_order: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("RechargeCenter.GetRechargeOrder", partial(
            stubs.center.GetRechargeOrder, recharge_pb2.GetRechargeOrderRequest(order_no=no, merchant_id=me),
            timeout=10)),
        ("RechargeOps.GetOrderTimeline", partial(
            stubs.ops.GetOrderTimeline, recharge_pb2.GetOrderTimelineRequest(order_no=no, merchant_id=me),
            timeout=10)),
        ("CardSystem.GetRecharge", partial(
            stubs.card.GetRecharge, card_pb2.GetRechargeRequest(order_no=no, merchant_id=me), timeout=10)),
        ("PaymentGateway.QueryOrder", partial(
            stubs.gateway.QueryOrder, wechatpay_pb2.QueryOrderRequest(out_trade_no=no, merchant=ref),
            timeout=10)),
    ]
    about_card: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("CardSystem.GetCard", partial(
            stubs.card.GetCard, card_pb2.GetCardRequest(card_no=card_no, merchant_id=me), timeout=10)),
        ("CardSystem.ListJournal", partial(
            stubs.card.ListJournal,
            card_pb2.ListJournalRequest(card_no=card_no, page_size=10, merchant_id=me), timeout=10)),
    ]
    reads: list[_Read] = [(call, no, order.merchant_id, me, attempt) for call, attempt in about_order]
    reads += [(call, card_no, order.merchant_id, me, attempt) for call, attempt in about_card]
    if order.out_refund_no:
        request = wechatpay_pb2.QueryRefundRequest(out_refund_no=order.out_refund_no, merchant=ref)
        attempt = partial(stubs.gateway.QueryRefund, request, timeout=10)
        reads.append(("PaymentGateway.QueryRefund", order.out_refund_no, order.merchant_id, me, attempt))
    return reads


async def _answer(attempt: Callable[[], Awaitable[Any]]) -> str:
    outcome = await retrying(attempt, attempts=10)
    return "FOUND" if isinstance(outcome, Done) else outcome.code


async def cross_reads(
    stubs: Stubs, sample: Sequence[inv.Order], accounts: Sequence[inv.MerchantAccount], sp_mchid: str
) -> list[inv.CrossRead]:
    """Each sampled order and its card, read as every other merchant of the run."""
    reads = [
        read
        for order in sample
        for reader in accounts
        if reader.merchant_id != order.merchant_id
        for read in _reads_of(order, reader, stubs, sp_mchid)
    ]
    answers = await _bounded(partial(_answer, attempt) for *_, attempt in reads)
    return [
        inv.CrossRead(call, subject, owner, reader, answer)
        for (call, subject, owner, reader, _), answer in zip(reads, answers, strict=True)
    ]


async def observe(
    stubs: Stubs,
    accounts: Sequence[inv.MerchantAccount],
    cards: Collection[str],
    driver: inv.DriverLog,
    sp_mchid: str,
    kills: dict[str, list[float]] | None = None,
) -> inv.Observation:
    """The run's orders (of ``cards``) as each of its merchants (``accounts``) sees them, and
    everything they touched; ``sp_mchid``: the provider's, for partner-mode WeChat requests;
    ``kills``: when the crash monkey killed which replica (node id -> epoch seconds)."""
    card_set = set(cards)
    by_id = {a.merchant_id: a for a in accounts}
    listed = {a.merchant_id: [_order(o) for o in await list_orders_as(stubs, a.merchant_id, card_set)]
              for a in accounts}
    orders = list({o.order_no: o for mine in listed.values() for o in mine}.values())
    order_nos = [o.order_no for o in orders]
    merchants_of = {o.order_no: o.merchant_id for o in orders}

    def ref_of(order_no: str) -> wechatpay_pb2.MerchantRef | None:
        """As the order's merchant (the driver's when the order names none of the run's)."""
        account = by_id.get(merchants_of.get(order_no, "")) or by_id.get(driver.merchants.get(order_no, ""))
        return wechat_ref(account, sp_mchid) if account is not None else None

    timelines = await _bounded(partial(_timeline, stubs, o) for o in orders)
    pres = await _bounded(partial(_pre_recharge, stubs, o) for o in orders)
    trades = await _bounded(partial(_trade, stubs, no, ref_of(no)) for no in order_nos)
    card_views = await _bounded(
        partial(_card, stubs, c, driver.card_merchants.get(c, "")) for c in sorted(card_set)
    )
    mine = set(order_nos) | set(driver.created.values())
    rows = [
        r for a in accounts for day in bill_dates() for r in await _bill(stubs, day, a, sp_mchid)
        if r.out_trade_no in mine
    ]
    refund_of = {r.out_refund_no: r.out_trade_no for r in rows if r.out_refund_no}
    refund_of.update({o.out_refund_no: o.order_no for o in orders if o.out_refund_no})
    queried = await _bounded(partial(_refund, stubs, n, ref_of(no)) for n, no in sorted(refund_of.items()))
    refunds = [r for r in queried if r is not None]
    anomalies = {a.merchant_id: [n for n in await _anomalies_as(stubs, a.merchant_id) if n in mine]
                 for a in accounts}
    reads = await cross_reads(stubs, cross_sample(orders), accounts, sp_mchid)
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
        merchants=dict(by_id),
        listings={m: [o.order_no for o in listed_orders] for m, listed_orders in listed.items()},
        anomaly_listings=anomalies,
        cross_reads=reads,
        kills=dict(kills or {}),
    )
