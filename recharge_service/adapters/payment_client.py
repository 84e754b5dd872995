"""The payment gateway port over gRPC (``wechatpay.v1.PaymentGateway``)."""

from __future__ import annotations

import grpc

from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.outcomes import Done, Rejected, Unknown
from recharge_service.adapters.grpc_calls import RpcCaller
from recharge_service.adapters.retrying import RetryPolicy
from recharge_service.domain.merchant import WechatAccount, WechatMode
from recharge_service.service_layer.ports import PAYMENT_METHODS, PaymentTransaction, RefundResult, Timeline


def _trade_state(message: wechatpay_pb2.Transaction | wechatpay_pb2.CloseOrderResponse) -> str:
    return str(wechatpay_pb2.TradeState.Name(message.trade_state)).removeprefix("TRADE_STATE_")


def _refund_status(message: wechatpay_pb2.Refund) -> str:
    return str(wechatpay_pb2.RefundStatus.Name(message.status)).removeprefix("REFUND_STATUS_")


def _prepay_id(message: wechatpay_pb2.CreatePrepayResponse) -> str:
    return str(message.prepay_id)


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
        refund_fen=message.refund_fen,
    )


class PaymentClient:
    """``sp_mchid``: the provider's WeChat Pay merchant id, named with a partner-mode merchant's
    sub_mchid; a direct-mode merchant's requests name its own mchid."""

    def __init__(
        self, channel: grpc.aio.Channel, timeline: Timeline, policy: RetryPolicy, sp_mchid: str
    ) -> None:
        stub = wechatpay_pb2_grpc.PaymentGatewayStub(channel)
        self._rpc = RpcCaller(stub, PAYMENT_METHODS, timeline, policy)
        self._sp_mchid = sp_mchid

    def _ref(self, account: WechatAccount) -> wechatpay_pb2.MerchantRef:
        if account.mode is WechatMode.DIRECT:
            return wechatpay_pb2.MerchantRef(mchid=account.mchid)
        return wechatpay_pb2.MerchantRef(sp_mchid=self._sp_mchid, sub_mchid=account.mchid)

    async def create_prepay(
        self,
        account: WechatAccount,
        out_trade_no: str,
        description: str,
        amount_total_fen: int,
        payer_openid: str,
        time_expire: str,
    ) -> Done[str] | Rejected | Unknown:
        request = wechatpay_pb2.CreatePrepayRequest(
            merchant=self._ref(account),
            out_trade_no=out_trade_no,
            description=description,
            amount_total_fen=amount_total_fen,
            payer_openid=payer_openid,
            time_expire=time_expire,
        )
        return await self._rpc.call("CreatePrepay", request, out_trade_no, _prepay_id, announce=True)

    async def query_order(
        self, account: WechatAccount, out_trade_no: str
    ) -> Done[PaymentTransaction] | Rejected | Unknown:
        request = wechatpay_pb2.QueryOrderRequest(merchant=self._ref(account), out_trade_no=out_trade_no)
        return await self._rpc.call("QueryOrder", request, out_trade_no, _transaction, describe=_trade_state)

    async def close_order(self, account: WechatAccount, out_trade_no: str) -> Done[str] | Rejected | Unknown:
        request = wechatpay_pb2.CloseOrderRequest(merchant=self._ref(account), out_trade_no=out_trade_no)
        return await self._rpc.call(
            "CloseOrder", request, out_trade_no, _trade_state, announce=True, describe=_trade_state
        )

    async def create_refund(
        self,
        account: WechatAccount,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str,
    ) -> Done[RefundResult] | Rejected | Unknown:
        request = wechatpay_pb2.CreateRefundRequest(
            merchant=self._ref(account),
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            refund_fen=refund_fen,
            total_fen=total_fen,
            reason=reason,
        )
        return await self._rpc.call(
            "CreateRefund", request, out_trade_no, _refund, announce=True, describe=_refund_status
        )

    async def query_refund(
        self, account: WechatAccount, order_no: str, out_refund_no: str
    ) -> Done[RefundResult] | Rejected | Unknown:
        request = wechatpay_pb2.QueryRefundRequest(merchant=self._ref(account), out_refund_no=out_refund_no)
        return await self._rpc.call("QueryRefund", request, order_no, _refund, describe=_refund_status)
