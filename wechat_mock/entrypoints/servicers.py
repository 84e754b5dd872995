"""gRPC servicers: proto in -> command -> one use case -> proto out; errors via ``maps_errors``."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.grpc_status import maps_errors
from wechat_mock.entrypoints import converters
from wechat_mock.service_layer import bills, commands, messages, payments, refunds
from wechat_mock.service_layer.context import Context

Ctx: TypeAlias = grpc.aio.ServicerContext


class PaymentGatewayServicer(wechatpay_pb2_grpc.PaymentGatewayServicer):
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @maps_errors
    async def CreatePrepay(
        self, request: wechatpay_pb2.CreatePrepayRequest, context: Ctx
    ) -> wechatpay_pb2.CreatePrepayResponse:
        command = commands.CreatePrepay(
            out_trade_no=request.out_trade_no,
            description=request.description,
            amount_total_fen=request.amount_total_fen,
            payer_openid=request.payer_openid,
            time_expire=request.time_expire,
            attach=request.attach,
            merchant=converters.merchant_ref(request.merchant),
        )
        order = await payments.create_prepay(command, self._ctx)
        return wechatpay_pb2.CreatePrepayResponse(prepay_id=order.prepay_id)

    @maps_errors
    async def QueryOrder(
        self, request: wechatpay_pb2.QueryOrderRequest, context: Ctx
    ) -> wechatpay_pb2.Transaction:
        merchant = converters.merchant_ref(request.merchant)
        return converters.transaction(await payments.query_order(request.out_trade_no, merchant, self._ctx))

    @maps_errors
    async def CloseOrder(
        self, request: wechatpay_pb2.CloseOrderRequest, context: Ctx
    ) -> wechatpay_pb2.CloseOrderResponse:
        command = commands.CloseOrder(request.out_trade_no, converters.merchant_ref(request.merchant))
        order = await payments.close_order(command, self._ctx)
        return wechatpay_pb2.CloseOrderResponse(
            out_trade_no=order.out_trade_no, trade_state=converters.TRADE_STATES[order.trade_state]
        )

    @maps_errors
    async def CreateRefund(
        self, request: wechatpay_pb2.CreateRefundRequest, context: Ctx
    ) -> wechatpay_pb2.Refund:
        command = commands.CreateRefund(
            out_trade_no=request.out_trade_no,
            out_refund_no=request.out_refund_no,
            refund_fen=request.refund_fen,
            total_fen=request.total_fen,
            reason=request.reason,
            merchant=converters.merchant_ref(request.merchant),
        )
        return converters.refund(await refunds.create_refund(command, self._ctx))

    @maps_errors
    async def QueryRefund(
        self, request: wechatpay_pb2.QueryRefundRequest, context: Ctx
    ) -> wechatpay_pb2.Refund:
        merchant = converters.merchant_ref(request.merchant)
        return converters.refund(await refunds.query_refund(request.out_refund_no, merchant, self._ctx))

    @maps_errors
    async def DownloadTradeBill(
        self, request: wechatpay_pb2.DownloadTradeBillRequest, context: Ctx
    ) -> wechatpay_pb2.DownloadTradeBillResponse:
        merchant = converters.merchant_ref(request.merchant)
        bill = await bills.download_trade_bill(request.bill_date, merchant, self._ctx, faults=True)
        return converters.trade_bill(bill)


class PayerSimulatorServicer(wechatpay_pb2_grpc.PayerSimulatorServicer):
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @maps_errors
    async def Pay(self, request: wechatpay_pb2.PayRequest, context: Ctx) -> wechatpay_pb2.Transaction:
        order = await payments.pay(commands.Pay(request.out_trade_no, request.payer_openid), self._ctx)
        return converters.transaction(order)

    @maps_errors
    async def SettleRefund(
        self, request: wechatpay_pb2.SettleRefundRequest, context: Ctx
    ) -> wechatpay_pb2.Refund:
        status = converters.settle_status(request.status)
        return converters.refund(await refunds.settle_now(request.out_refund_no, status, self._ctx))


class MessageSimulatorServicer(wechatpay_pb2_grpc.MessageSimulatorServicer):
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @maps_errors
    async def SendTemplateMessage(
        self, request: wechatpay_pb2.SendTemplateMessageRequest, context: Ctx
    ) -> wechatpay_pb2.SendTemplateMessageResponse:
        command = commands.SendTemplateMessage(
            openid=request.openid,
            template_id=request.template_id,
            data=dict(request.data),
            idempotency_key=request.idempotency_key,
        )
        message, first = await messages.send_template_message(command, self._ctx)
        return wechatpay_pb2.SendTemplateMessageResponse(msgid=message.msgid, first_delivery=first)

    @maps_errors
    async def ListSentMessages(
        self, request: wechatpay_pb2.ListSentMessagesRequest, context: Ctx
    ) -> wechatpay_pb2.ListSentMessagesResponse:
        sent, next_page_token = await messages.list_sent_messages(
            request.openid, self._ctx, request.page_size, request.page_token
        )
        return wechatpay_pb2.ListSentMessagesResponse(
            messages=[converters.sent_message(m) for m in sent], next_page_token=next_page_token
        )
