"""Issue 12's promises between merchants, checked on one observation: no money and no data crosses.

- M1 no cross-merchant credit: an order belongs to the merchant the driver created it as; its
  card, its pre-recharge (and the card that pre-recharge is for) and every card its credit landed
  on belong to that merchant; every card belongs to the merchant it was opened for.
- M2 no cross-merchant payment or refund: every trade, refund and trade-bill row of an order is
  booked under its merchant's WeChat account (the merchant's mchid, or its sub_mchid in partner
  mode).
- M3 no cross-merchant visibility: reading a sample of orders and cards as another merchant answers
  NOT_FOUND; ListRechargeOrders, ListAnomalies and the trade bill asked as a merchant show only
  that merchant's orders and rows; no order's pre-recharge is a tombstone naming no merchant (the
  card system shows those to every merchant).
- M4 each merchant's money conserved on its own: over its orders not parked in MANUAL_REVIEW, what
  it was paid (rows of its own account) = the principal credited to its own cards + what was
  refunded under its own account; and every journal entry on its cards is a credit of one of its
  orders or a spend the driver made as it.

The merchant of an order is the one the recharge center names (``Order.merchant_id``); M1 holds it
to the driver's. A card's merchant is the one the card system names, else the driver's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from scripts.chaos.observation import (
    BillRow,
    JournalEntry,
    MerchantAccount,
    Observation,
    Order,
    Refund,
    Violation,
)

#: Trade states of an order WeChat never saw or that could not be read: nobody's account to check.
_NO_TRADE = ("NOT_FOUND", "UNOBSERVED")


def card_owner(obs: Observation, card_no: str) -> str:
    """The merchant the card system says holds the card; the driver's when it was not observed."""
    card = obs.cards.get(card_no)
    return card.merchant_id if card is not None else obs.driver.card_merchants.get(card_no, "")


def _account_of(obs: Observation, orders: Mapping[str, Order], order_no: str) -> MerchantAccount | None:
    order = orders.get(order_no)
    return obs.merchants.get(order.merchant_id) if order is not None else None


# --------------------------------------------------------------------------- M1


def check_credit(obs: Observation, credits: Mapping[str, Sequence[JournalEntry]]) -> Iterator[Violation]:
    """M1; ``credits``: principal and bonus entries by order number."""
    for card in sorted(obs.cards.values(), key=lambda c: c.card_no):
        meant = obs.driver.card_merchants.get(card.card_no)
        if meant is not None and card.merchant_id != meant:
            yield Violation("M1", card.card_no, f"opened for merchant {meant}, the card system has it "
                                                f"under {card.merchant_id or 'no merchant'}")
    for order in obs.orders:
        yield from _check_order_credit(obs, order, credits.get(order.order_no, ()))


def _check_order_credit(
    obs: Observation, order: Order, credits: Sequence[JournalEntry]
) -> Iterator[Violation]:
    no, mine = order.order_no, order.merchant_id

    def v(message: str) -> Violation:
        return Violation("M1", no, message)

    if mine not in obs.merchants:
        yield v(f"order names merchant {mine!r}, none of the run's ({', '.join(sorted(obs.merchants))})")
    meant = obs.driver.merchants.get(no)
    if meant is not None and meant != mine:
        yield v(f"created as merchant {meant}, the recharge center has it under {mine or 'no merchant'}")
    owner = card_owner(obs, order.card_no)
    if owner != mine:
        yield v(f"an order of merchant {mine} for card {order.card_no} of merchant {owner or 'unknown'}")
    pre = obs.pre_recharges.get(no)
    if pre is not None and pre.status != "MISSING":
        nameless_tombstone = pre.tombstone and not pre.merchant_id
        if pre.merchant_id != mine and not nameless_tombstone:
            yield v(f"pre-recharge ({pre.status}) recorded for merchant {pre.merchant_id or 'none'}, "
                    f"the order is {mine}'s")
        if pre.card_no and card_owner(obs, pre.card_no) != mine:
            yield v(f"pre-recharge on card {pre.card_no} of merchant "
                    f"{card_owner(obs, pre.card_no) or 'unknown'}, the order is {mine}'s")
    for entry in credits:
        holder = card_owner(obs, entry.card_no)
        if holder != mine:
            yield v(f"{entry.kind} entry {entry.entry_id} ({entry.amount_fen} fen) on card {entry.card_no} "
                    f"of merchant {holder or 'unknown'}, the order is {mine}'s")


# --------------------------------------------------------------------------- M2


def check_payments(obs: Observation, refunds: Mapping[str, Sequence[Refund]]) -> Iterator[Violation]:
    """M2; ``refunds``: every refund WeChat knows of (QueryRefund and bill rows), by order number."""
    orders = {o.order_no: o for o in obs.orders}

    def theirs(account: MerchantAccount) -> str:
        return f"the order is {account.merchant_id}'s ({account.mchid})"

    for row in obs.bill_rows:
        account = _account_of(obs, orders, row.out_trade_no)
        if account is not None and row.mchid != account.mchid:
            what = f"refund {row.out_refund_no}" if row.trade_state == "REFUND" else "payment"
            where = f"mchid {row.mchid or 'none'} (bill of {row.bill_of or '?'})"
            yield Violation("M2", row.out_trade_no, f"{what} booked under {where}; {theirs(account)}")
    for no, trade in sorted(obs.trades.items()):
        account = _account_of(obs, orders, no)
        if account is None or trade.trade_state.startswith(_NO_TRADE):
            continue
        if trade.mchid != account.mchid:
            what = f"WeChat holds the trade ({trade.trade_state}) under mchid {trade.mchid or 'none'}"
            yield Violation("M2", no, f"{what}; {theirs(account)}")
    for no, found in sorted(refunds.items()):
        account = _account_of(obs, orders, no)
        for refund in found:
            if account is not None and refund.mchid != account.mchid:
                what = f"refund {refund.out_refund_no} ({refund.status}) under mchid {refund.mchid or 'none'}"
                yield Violation("M2", no, f"{what}; {theirs(account)}")


# --------------------------------------------------------------------------- M3


def check_visibility(obs: Observation) -> Iterator[Violation]:
    for read in obs.cross_reads:
        if read.answer != "NOT_FOUND":
            yield Violation("M3", read.subject, f"{read.call} as merchant {read.reader} answered "
                            f"{read.answer}, not NOT_FOUND; it is {read.owner}'s")
    orders = {o.order_no: o for o in obs.orders}
    for call, listings in (("ListRechargeOrders", obs.listings), ("ListAnomalies", obs.anomaly_listings)):
        for reader, order_nos in sorted(listings.items()):
            for no in order_nos:
                order = orders.get(no)
                holder = order.merchant_id if order is not None else ""
                meant = obs.driver.merchants.get(no, holder)
                if reader != holder or reader != meant:
                    yield Violation("M3", no, f"{call} as merchant {reader} lists it; it is "
                                    f"{meant or holder or 'unknown'}'s")
    for pre in sorted(obs.pre_recharges.values(), key=lambda p: p.order_no):
        if pre.tombstone and not pre.merchant_id and pre.order_no in orders:
            yield Violation("M3", pre.order_no, "VOIDED tombstone names no merchant: every merchant's "
                            f"GetRecharge finds it (the order is {orders[pre.order_no].merchant_id}'s)")
    for row in obs.bill_rows:
        account = obs.merchants.get(row.bill_of)
        if account is not None and row.mchid != account.mchid:
            yield Violation("M3", row.out_trade_no, f"merchant {row.bill_of}'s trade bill ({account.mchid}) "
                            f"shows a {row.trade_state} row of mchid {row.mchid or 'none'}")


# --------------------------------------------------------------------------- M4


def merchant_totals(
    obs: Observation,
    principals: Mapping[str, Sequence[JournalEntry]],
    refunds: Mapping[str, Sequence[Refund]],
) -> dict[str, dict[str, int]]:
    """Per merchant, each amount counted only where it is booked to that merchant."""
    totals: dict[str, dict[str, int]] = {}
    for merchant_id, account in sorted(obs.merchants.items()):
        mine = [o for o in obs.orders if o.merchant_id == merchant_id]
        counted = {o.order_no for o in mine if o.status != "MANUAL_REVIEW"}
        paid_rows: dict[str, BillRow] = {
            r.out_trade_no: r
            for r in obs.bill_rows
            if r.trade_state == "SUCCESS" and r.mchid == account.mchid and r.out_trade_no in counted
        }
        cards = [c for c in obs.cards.values() if c.merchant_id == merchant_id]
        entries = [e for c in cards for e in obs.journals.get(c.card_no, [])]
        own_keys = {o.order_no for o in mine} | {
            s.request_id for s in obs.driver.spends
            if (s.merchant_id or card_owner(obs, s.card_no)) == merchant_id
        }
        totals[merchant_id] = {
            "orders": len(mine),
            "paid_fen": sum(r.amount_total_fen for r in paid_rows.values()),
            "credited_principal_fen": sum(
                e.amount_fen for no in counted for e in principals.get(no, ())
                if card_owner(obs, e.card_no) == merchant_id
            ),
            "refunded_fen": sum(
                r.refund_fen for no in counted for r in refunds.get(no, ())
                if r.status == "SUCCESS" and r.mchid == account.mchid
            ),
            "manual_review_fen": sum(o.pay_amount_fen for o in mine if o.status == "MANUAL_REVIEW"),
            "cards": len(cards),
            "balance_fen": sum(c.balance_fen for c in cards),
            "journal_fen": sum(e.amount_fen for e in entries),
            "explained_fen": sum(e.amount_fen for e in entries if e.business_key in own_keys),
        }
    return totals


def check_conserved(totals: Mapping[str, Mapping[str, int]]) -> Iterator[Violation]:
    for merchant_id, t in totals.items():
        if t["paid_fen"] != t["credited_principal_fen"] + t["refunded_fen"]:
            yield Violation("M4", merchant_id, f"paid {t['paid_fen']} fen != credited principal "
                            f"{t['credited_principal_fen']} + refunded {t['refunded_fen']} (its own account "
                            "and cards only)")
        if t["journal_fen"] != t["explained_fen"]:
            yield Violation("M4", merchant_id, f"its cards' journals hold {t['journal_fen']} fen, its own "
                            f"top-ups and spends explain {t['explained_fen']} fen")


def check_isolation(
    obs: Observation,
    principals: Mapping[str, Sequence[JournalEntry]],
    bonuses: Mapping[str, Sequence[JournalEntry]],
    refunds: Mapping[str, Sequence[Refund]],
    totals: Mapping[str, Mapping[str, int]],
) -> Iterator[Violation]:
    """M1..M4 (``totals`` from :func:`merchant_totals`)."""
    credits = {no: [*principals.get(no, ()), *bonuses.get(no, ())] for no in {*principals, *bonuses}}
    yield from check_credit(obs, credits)
    yield from check_payments(obs, refunds)
    yield from check_visibility(obs)
    yield from check_conserved(totals)
