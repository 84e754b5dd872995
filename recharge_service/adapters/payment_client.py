"""The payment gateway port over gRPC (``wechatpay.v1.PaymentGateway``)."""

from __future__ import annotations

import grpc

from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.outcomes import Done, Rejected, Unknown
from recharge_service.adapters.retrying import RetryPolicy, with_retries
from recharge_service.service_layer.ports import PAYMENT_METHODS, PaymentTransaction, RefundResult, Timeline


def _trade_state(message: wechatpay_pb2.Transaction | wechatpay_pb2.CloseOrderResponse) -> str:
    return str(wechatpay_pb2.TradeState.Name(message.trade_state)).removeprefix("TRADE_STATE_")


def _refund_status(message: wechatpay_pb2.Refund) -> str:
    return str(wechatpay_pb2.RefundStatus.Name(message.status)).removeprefix("REFUND_STATUS_")


def _transaction(message: wechatpay_pb2.Transaction) -> PaymentTransaction:
    return PaymentTransaction(
        out_trade_no=message.out_trade_no,
        transaction_id=message.transaction_id,
        trade_state=_trade_state(message),
        amount_total_fen=message.amount_total_fen,
        success_time=message.success_time,
    )


def _refund(message: wechatpay_pb2.Refund) -> RefundResult:
    return RefundResult(
        out_refund_no=message.out_refund_no,
        refund_id=message.refund_id,
        status=_refund_status(message),
    )


class PaymentClient:
    def __init__(self, channel: grpc.aio.Channel, timeline: Timeline, policy: RetryPolicy) -> None:
        self._stub = wechatpay_pb2_grpc.PaymentGatewayStub(channel)
        self._timeline = timeline
        self._policy = policy

    async def create_prepay(
        self, out_trade_no: str, description: str, amount_total_fen: int, payer_openid: str, time_expire: str
    ) -> Done[str] | Rejected | Unknown:
        request = wechatpay_pb2.CreatePrepayRequest(
            out_trade_no=out_trade_no,
            description=description,
            amount_total_fen=amount_total_fen,
            payer_openid=payer_openid,
            time_expire=time_expire,
        )
        outcome = await with_retries(
            PAYMENT_METHODS + "CreatePrepay",
            out_trade_no,
            lambda deadline: self._stub.CreatePrepay(request, timeout=deadline),
            self._policy,
            self._timeline,
            announce=True,
        )
        return Done(outcome.value.prepay_id, outcome.latency_ms) if isinstance(outcome, Done) else outcome

    async def query_order(self, out_trade_no: str) -> Done[PaymentTransaction] | Rejected | Unknown:
        request = wechatpay_pb2.QueryOrderRequest(out_trade_no=out_trade_no)
        outcome = await with_retries(
            PAYMENT_METHODS + "QueryOrder",
            out_trade_no,
            lambda deadline: self._stub.QueryOrder(request, timeout=deadline),
            self._policy,
            self._timeline,
            describe=_trade_state,
        )
        return Done(_transaction(outcome.value), outcome.latency_ms) if isinstance(outcome, Done) else outcome

    async def close_order(self, out_trade_no: str) -> Done[str] | Rejected | Unknown:
        request = wechatpay_pb2.CloseOrderRequest(out_trade_no=out_trade_no)
        outcome = await with_retries(
            PAYMENT_METHODS + "CloseOrder",
            out_trade_no,
            lambda deadline: self._stub.CloseOrder(request, timeout=deadline),
            self._policy,
            self._timeline,
            announce=True,
            describe=_trade_state,
        )
        if isinstance(outcome, Done):
            return Done(_trade_state(outcome.value), outcome.latency_ms)
        return outcome

    async def create_refund(
        self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int, reason: str
    ) -> Done[RefundResult] | Rejected | Unknown:
        request = wechatpay_pb2.CreateRefundRequest(
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            refund_fen=refund_fen,
            total_fen=total_fen,
            reason=reason,
        )
        outcome = await with_retries(
            PAYMENT_METHODS + "CreateRefund",
            out_trade_no,
            lambda deadline: self._stub.CreateRefund(request, timeout=deadline),
            self._policy,
            self._timeline,
            announce=True,
            describe=_refund_status,
        )
        return Done(_refund(outcome.value), outcome.latency_ms) if isinstance(outcome, Done) else outcome

    async def query_refund(
        self, order_no: str, out_refund_no: str
    ) -> Done[RefundResult] | Rejected | Unknown:
        request = wechatpay_pb2.QueryRefundRequest(out_refund_no=out_refund_no)
        outcome = await with_retries(
            PAYMENT_METHODS + "QueryRefund",
            order_no,
            lambda deadline: self._stub.QueryRefund(request, timeout=deadline),
            self._policy,
            self._timeline,
            describe=_refund_status,
        )
        return Done(_refund(outcome.value), outcome.latency_ms) if isinstance(outcome, Done) else outcome
