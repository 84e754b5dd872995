"""The trade bill: every payment and refund of one day (Shanghai time), the source of
reconciliation. A payment is listed on the day it succeeded; a refund on the day it was accepted,
with its current status. ``total_refunded_fen`` counts SUCCESS refunds only.

Asked for one merchant, the bill lists that merchant's trades only (partner mode: that
sub-merchant's); asked for none, every trade (the service provider's view). Each row names its
merchant (``mchid``: the direct merchant's mchid, or the sub_mchid)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from rc_common.errors import InvalidArgument
from rc_common.faults import FaultKind
from rc_common.logs import get_logger
from wechat_mock.domain.merchants import Merchant, MerchantRef
from wechat_mock.domain.refunds import RefundStatus
from wechat_mock.domain.times import day_bounds, parse_bill_date
from wechat_mock.service_layer.context import Context

log = get_logger("wechat.bills")


@dataclass(frozen=True)
class BillRow:
    trade_time: datetime
    out_trade_no: str
    transaction_id: str
    trade_state: str
    amount_total_fen: int
    payer_openid: str
    out_refund_no: str = ""
    refund_id: str = ""
    refund_fen: int = 0
    refund_status: str = ""
    #: The direct merchant's mchid, or the sub_mchid (partner mode).
    mchid: str = ""


@dataclass(frozen=True)
class TradeBill:
    bill_date: date
    rows: list[BillRow]
    total_paid_fen: int
    total_refunded_fen: int


BILL_METHOD = "/wechatpay.v1.PaymentGateway/DownloadTradeBill"
#: Reconciliation tests: what the delivered bill may get wrong (the trades themselves stay right).
BILL_FAULTS = (FaultKind.BILL_MISSING_LINE, FaultKind.BILL_CHANGED_AMOUNT, FaultKind.BILL_EXTRA_PAYMENT)


async def download_trade_bill(
    bill_date: str, merchant_ref: MerchantRef, ctx: Context, *, faults: bool = False
) -> TradeBill:
    """The day's bill; with ``faults`` (the gRPC answer), the active bill faults alter it."""
    merchant = ctx.accounts.optional(merchant_ref)
    try:
        day = parse_bill_date(bill_date)
    except ValueError as exc:
        raise InvalidArgument("bill_date", str(exc)) from exc
    start, end = day_bounds(day)
    async with ctx.uow(readonly=True) as uow:
        paid = await uow.orders.paid_between(start, end, merchant)
        refunds = await uow.refunds.created_between(start, end, merchant)
        orders = await uow.orders.get_many(r.out_trade_no for r in refunds)
    rows = [
        BillRow(
            o.success_time or o.created_at,
            o.out_trade_no,
            o.transaction_id,
            "SUCCESS",
            o.amount_total_fen,
            o.paid_openid,
            mchid=o.merchant.own_mchid,
        )
        for o in paid
    ]
    for r in refunds:
        order = orders[r.out_trade_no]
        rows.append(
            BillRow(
                r.created_at,
                r.out_trade_no,
                r.transaction_id,
                "REFUND",
                order.amount_total_fen,
                order.paid_openid,
                r.out_refund_no,
                r.refund_id,
                r.refund_fen,
                r.status.value,
                r.merchant.own_mchid,
            )
        )
    rows.sort(key=lambda row: (row.trade_time, row.out_trade_no, row.out_refund_no))
    if faults:
        rows = _with_faults(rows, ctx, start, merchant)
    return TradeBill(
        bill_date=day,
        rows=rows,
        total_paid_fen=sum(row.amount_total_fen for row in rows if row.trade_state == "SUCCESS"),
        total_refunded_fen=sum(r.refund_fen for r in refunds if r.status is RefundStatus.SUCCESS),
    )


def _with_faults(
    rows: list[BillRow], ctx: Context, start: datetime, merchant: Merchant | None
) -> list[BillRow]:
    """Each bill fault kind that fires (at most once per kind and download) alters one payment
    line: the first one left out, the first remaining one a fen higher, or a payment nobody
    ordered appended (1 fen, ``EXTRA<n>``)."""
    result = list(rows)
    for kind in BILL_FAULTS:
        rule = ctx.faults.draw(BILL_METHOD, (kind,))
        if rule is None:
            continue
        log.info("fault_injected", method=BILL_METHOD, kind=rule.kind.name)
        payments = [i for i, row in enumerate(result) if row.trade_state == "SUCCESS"]
        if rule.kind is FaultKind.BILL_EXTRA_PAYMENT:
            serial = len(result) + 1
            mchid = merchant.own_mchid if merchant else ""
            result.append(
                BillRow(start, f"EXTRA{serial:08d}", f"EXTRA-TX-{serial}", "SUCCESS", 1, "", mchid=mchid)
            )
        elif payments and rule.kind is FaultKind.BILL_MISSING_LINE:
            del result[payments[0]]
        elif payments:
            row = result[payments[0]]
            result[payments[0]] = replace(row, amount_total_fen=row.amount_total_fen + 1)
    return result
