"""Protos to the domain's values and domain objects to protos (and nothing else)."""

from __future__ import annotations

from protos.wechatpay.v1 import wechatpay_pb2
from rc_common.errors import InvalidArgument
from wechat_mock.domain.merchants import Merchant, MerchantRef
from wechat_mock.domain.messages import TemplateMessage
from wechat_mock.domain.payments import PaymentOrder, TradeState
from wechat_mock.domain.refunds import Refund, RefundStatus
from wechat_mock.domain.times import format_time
from wechat_mock.service_layer.bills import BillRow, TradeBill

TRADE_STATES = {
    TradeState.NOTPAY: wechatpay_pb2.TRADE_STATE_NOTPAY,
    TradeState.SUCCESS: wechatpay_pb2.TRADE_STATE_SUCCESS,
    TradeState.CLOSED: wechatpay_pb2.TRADE_STATE_CLOSED,
    TradeState.REFUND: wechatpay_pb2.TRADE_STATE_REFUND,
}

REFUND_STATUSES = {
    RefundStatus.PROCESSING: wechatpay_pb2.REFUND_STATUS_PROCESSING,
    RefundStatus.SUCCESS: wechatpay_pb2.REFUND_STATUS_SUCCESS,
    RefundStatus.CLOSED: wechatpay_pb2.REFUND_STATUS_CLOSED,
    RefundStatus.ABNORMAL: wechatpay_pb2.REFUND_STATUS_ABNORMAL,
}


def merchant_ref(ref: wechatpay_pb2.MerchantRef) -> MerchantRef:
    """A request's MerchantRef as sent (unset: all empty); checked by the use case."""
    return MerchantRef(mchid=ref.mchid, sp_mchid=ref.sp_mchid, sub_mchid=ref.sub_mchid)


def merchant(item: Merchant) -> wechatpay_pb2.MerchantRef:
    return wechatpay_pb2.MerchantRef(mchid=item.mchid, sp_mchid=item.sp_mchid, sub_mchid=item.sub_mchid)


def transaction(order: PaymentOrder) -> wechatpay_pb2.Transaction:
    """The order as WeChat returns it: direct mode names ``mchid``; partner mode ``sp_mchid`` and
    ``sub_mchid`` (``mchid`` empty); ``appid`` is the trade's (the sp_appid in partner mode)."""
    return wechatpay_pb2.Transaction(
        out_trade_no=order.out_trade_no,
        transaction_id=order.transaction_id,
        trade_state=TRADE_STATES[order.trade_state],
        amount_total_fen=order.amount_total_fen,
        payer_openid=order.paid_openid or order.terms.payer_openid,
        success_time=format_time(order.success_time),
        mchid=order.merchant.mchid,
        appid=order.appid,
        time_expire=format_time(order.terms.time_expire),
        refunded_fen=order.refunded_fen,
        trade_state_desc=order.trade_state_desc,
        sp_mchid=order.merchant.sp_mchid,
        sub_mchid=order.merchant.sub_mchid,
    )


def refund(item: Refund) -> wechatpay_pb2.Refund:
    return wechatpay_pb2.Refund(
        out_refund_no=item.out_refund_no,
        refund_id=item.refund_id,
        status=REFUND_STATUSES[item.status],
        refund_fen=item.refund_fen,
        out_trade_no=item.out_trade_no,
        transaction_id=item.transaction_id,
        total_fen=item.terms.total_fen,
        create_time=format_time(item.created_at),
        success_time=format_time(item.success_time),
        merchant=merchant(item.merchant),
    )


def settle_status(value: int) -> RefundStatus:
    """A final refund status from the proto enum; InvalidArgument for PROCESSING or unset."""
    for status, number in REFUND_STATUSES.items():
        if number == value and status is not RefundStatus.PROCESSING:
            return status
    raise InvalidArgument("status", "must be REFUND_STATUS_SUCCESS, _CLOSED or _ABNORMAL")


def _bill_row(row: BillRow) -> wechatpay_pb2.TradeBillRow:
    return wechatpay_pb2.TradeBillRow(
        trade_time=format_time(row.trade_time),
        out_trade_no=row.out_trade_no,
        transaction_id=row.transaction_id,
        trade_state=row.trade_state,
        amount_total_fen=row.amount_total_fen,
        out_refund_no=row.out_refund_no,
        refund_id=row.refund_id,
        refund_fen=row.refund_fen,
        refund_status=row.refund_status,
        payer_openid=row.payer_openid,
        mchid=row.mchid,
    )


def trade_bill(bill: TradeBill) -> wechatpay_pb2.DownloadTradeBillResponse:
    return wechatpay_pb2.DownloadTradeBillResponse(
        bill_date=bill.bill_date.isoformat(),
        rows=[_bill_row(row) for row in bill.rows],
        total_paid_fen=bill.total_paid_fen,
        total_refunded_fen=bill.total_refunded_fen,
    )


def sent_message(message: TemplateMessage) -> wechatpay_pb2.SentMessage:
    return wechatpay_pb2.SentMessage(
        msgid=message.msgid,
        openid=message.openid,
        template_id=message.template_id,
        data=message.data,
        idempotency_key=message.idempotency_key,
        sent_at=format_time(message.sent_at),
        send_count=message.send_count,
    )
