"""WeChat's JSON documents (transaction, refund) and the trade bill file, from the domain's objects:
what the facade answers (and nothing else)."""

from __future__ import annotations

from typing import Any

from wechat_mock.domain.merchants import Merchant
from wechat_mock.domain.payments import PaymentOrder, TradeState
from wechat_mock.domain.refunds import USER_RECEIVED_ACCOUNT, Refund
from wechat_mock.domain.times import format_time
from wechat_mock.service_layer.bills import TradeBill


def merchant_head(merchant: Merchant, appid: str) -> dict[str, Any]:
    if merchant.is_direct:
        return {"appid": appid, "mchid": merchant.mchid}
    return {"sp_appid": appid, "sp_mchid": merchant.sp_mchid, "sub_mchid": merchant.sub_mchid}


def transaction_document(order: PaymentOrder) -> dict[str, Any]:
    """The order as ``GET …/out-trade-no/{no}`` answers it (direct or partner fields)."""
    merchant = order.merchant
    doc: dict[str, Any] = {
        **merchant_head(merchant, order.appid),
        "out_trade_no": order.out_trade_no,
        "trade_type": "JSAPI",
        "trade_state": order.trade_state.value,
        "trade_state_desc": order.trade_state_desc,
        "attach": order.terms.attach,
        "amount": {"total": order.amount_total_fen, "currency": "CNY"},
    }
    if order.is_paid:
        doc["transaction_id"] = order.transaction_id
        doc["bank_type"] = "OTHERS"
        doc["success_time"] = format_time(order.success_time)
        doc["amount"].update(payer_total=order.amount_total_fen, payer_currency="CNY")
        doc["payer"] = {"openid" if merchant.is_direct else "sp_openid": order.paid_openid}
    elif order.trade_state is TradeState.NOTPAY and order.terms.payer_openid:
        doc["payer"] = {"openid" if merchant.is_direct else "sp_openid": order.terms.payer_openid}
    return doc


def refund_document(refund: Refund, order: PaymentOrder) -> dict[str, Any]:
    """A refund as ``POST /v3/refund/domestic/refunds`` and its query answer it."""
    total, amount = order.amount_total_fen, refund.refund_fen
    doc: dict[str, Any] = {
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": refund.transaction_id,
        "out_trade_no": refund.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": USER_RECEIVED_ACCOUNT,
        "create_time": format_time(refund.created_at),
        "status": refund.status.value,
        "funds_account": "AVAILABLE",
        "amount": {
            "total": total,
            "refund": amount,
            "payer_total": total,
            "payer_refund": amount,
            "settlement_total": total,
            "settlement_refund": amount,
            "discount_refund": 0,
            "currency": "CNY",
        },
    }
    if not refund.merchant.is_direct:
        doc["sub_mchid"] = refund.merchant.sub_mchid
    if refund.success_time is not None:
        doc["success_time"] = format_time(refund.success_time)
    return doc


BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
    "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
BILL_SUMMARY_HEADER = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)


def yuan(fen: int) -> str:
    """Fen as WeChat's bills print money: yuan with two decimals (exact, no float)."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def bill_file(bill: TradeBill) -> bytes:
    """The trade bill as WeChat's ``ALL`` CSV: every value prefixed with a backtick, then the
    summary line. Amounts in yuan (two decimals)."""
    lines = [BILL_HEADER]
    for row in bill.rows:
        refund = bool(row.out_refund_no)
        values = [
            format_time(row.trade_time).replace("T", " ")[:19],
            "",
            row.mchid,
            "",
            "",
            row.transaction_id,
            row.out_trade_no,
            row.payer_openid,
            "JSAPI",
            row.trade_state,
            "OTHERS",
            "CNY",
            yuan(0 if refund else row.amount_total_fen),
            "0.00",
            row.refund_id,
            row.out_refund_no,
            yuan(row.refund_fen),
            "0.00",
            "ORIGINAL" if refund else "",
            row.refund_status,
            "",
            "",
            "0.00",
            "0.00%",
            yuan(row.amount_total_fen),
            yuan(row.refund_fen),
            "",
        ]
        lines.append(",".join("`" + value for value in values))
    lines.append(BILL_SUMMARY_HEADER)
    paid = bill.total_paid_fen
    refunded = bill.total_refunded_fen
    summary = [str(len(bill.rows)), yuan(paid), yuan(refunded), "0.00", "0.00", yuan(paid), yuan(refunded)]
    lines.append(",".join("`" + value for value in summary))
    return ("\n".join(lines) + "\n").encode("utf-8")
