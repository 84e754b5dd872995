"""The bare chain: do-nothing grpc.aio servers making the same hops a top-up makes.

Three processes with the real contracts and no work behind them (no database, no signing, no
logging): ``recharge`` (RechargeCenter.CreateRechargeOrder -> card PreRecharge + wechat
CreatePrepay; GetRechargeOrder from a dict; PaymentNotifications.Notify -> card ConfirmRecharge),
``card`` (PreRecharge, ConfirmRecharge answer at once) and ``wechat`` (CreatePrepay answers; Pay
answers and posts Notify to the recharge center in the background, as WeChat does). A top-up
against it crosses the same seven RPCs as against the real services, so the bench reports the
real flow as a share of what this machine can do at all.

The messages carry the merchant where the real ones do: CreateRechargeOrder and GetRechargeOrder
name it, PreRecharge names it, CreatePrepay names the WeChat account (direct: the merchant's mchid;
partner: the provider's sp_mchid with the sub_mchid) of the bench's merchants
(``scripts.merchants.BENCH_MERCHANTS``); asked for another merchant's order, it answers an empty one.

  python -m scripts.bench.bare --role card --listen 127.0.0.1:0      # prints "PORT <n>"
"""

from __future__ import annotations

import argparse
import asyncio

import grpc

from protos.card.v1 import card_pb2, card_pb2_grpc
from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from scripts.merchants import BENCH_MERCHANTS


class BareCard(card_pb2_grpc.CardSystemServicer):
    async def PreRecharge(
        self, request: card_pb2.PreRechargeRequest, context: object
    ) -> card_pb2.PreRecharge:
        return card_pb2.PreRecharge(
            order_no=request.order_no,
            card_no=request.card_no,
            status=card_pb2.PRE_RECHARGE_STATUS_RECHARGING,
            pay_amount_fen=request.pay_amount_fen,
            credit_amount_fen=request.pay_amount_fen,
        )

    async def ConfirmRecharge(
        self, request: card_pb2.ConfirmRechargeRequest, context: object
    ) -> card_pb2.PreRecharge:
        return card_pb2.PreRecharge(order_no=request.order_no, status=card_pb2.PRE_RECHARGE_STATUS_SUCCEEDED)


class BareRecharge(recharge_pb2_grpc.RechargeCenterServicer):
    def __init__(
        self, card: card_pb2_grpc.CardSystemStub, gateway: wechatpay_pb2_grpc.PaymentGatewayStub
    ) -> None:
        self._card = card
        self._gateway = gateway
        self.orders: dict[str, recharge_pb2.RechargeOrder] = {}
        #: merchant id -> the WeChat account its requests act for, as the recharge center names it.
        self._wechat_refs = {m.merchant_id: m.wechat_ref() for m in BENCH_MERCHANTS}

    async def CreateRechargeOrder(
        self, request: recharge_pb2.CreateRechargeOrderRequest, context: object
    ) -> recharge_pb2.RechargeOrder:
        order_no = "B" + request.idempotency_key
        await self._card.PreRecharge(
            card_pb2.PreRechargeRequest(
                merchant_id=request.merchant_id,
                order_no=order_no,
                card_no=request.card_no,
                pay_amount_fen=request.pay_amount_fen,
            ),
            timeout=10,
        )
        prepay = await self._gateway.CreatePrepay(
            wechatpay_pb2.CreatePrepayRequest(
                merchant=self._wechat_refs.get(request.merchant_id),
                out_trade_no=order_no,
                amount_total_fen=request.pay_amount_fen,
            ),
            timeout=10,
        )
        order = recharge_pb2.RechargeOrder(
            merchant_id=request.merchant_id,
            order_no=order_no,
            card_no=request.card_no,
            status=recharge_pb2.ORDER_STATUS_AWAITING_PAYMENT,
            pay_amount_fen=request.pay_amount_fen,
            prepay_id=prepay.prepay_id,
        )
        self.orders[order_no] = order
        return order

    async def GetRechargeOrder(
        self, request: recharge_pb2.GetRechargeOrderRequest, context: object
    ) -> recharge_pb2.RechargeOrder:
        order = self.orders.get(request.order_no)
        if order is None or order.merchant_id != request.merchant_id:
            return recharge_pb2.RechargeOrder(order_no=request.order_no)
        return order


class BareNotifications(wechatpay_pb2_grpc.PaymentNotificationsServicer):
    def __init__(self, recharge: BareRecharge, card: card_pb2_grpc.CardSystemStub) -> None:
        self._recharge = recharge
        self._card = card

    async def Notify(self, request: wechatpay_pb2.NotifyRequest, context: object) -> wechatpay_pb2.NotifyAck:
        order_no = request.body.decode()
        await self._card.ConfirmRecharge(card_pb2.ConfirmRechargeRequest(order_no=order_no), timeout=10)
        order = self._recharge.orders.get(order_no)
        if order is not None:
            order.status = recharge_pb2.ORDER_STATUS_CREDITED
        return wechatpay_pb2.NotifyAck(code="SUCCESS")


class BareWechat(wechatpay_pb2_grpc.PaymentGatewayServicer, wechatpay_pb2_grpc.PayerSimulatorServicer):
    def __init__(self, notify: wechatpay_pb2_grpc.PaymentNotificationsStub) -> None:
        self._notify = notify
        self._tasks: set[asyncio.Task[object]] = set()

    async def CreatePrepay(
        self, request: wechatpay_pb2.CreatePrepayRequest, context: object
    ) -> wechatpay_pb2.CreatePrepayResponse:
        return wechatpay_pb2.CreatePrepayResponse(prepay_id="wx" + request.out_trade_no)

    async def Pay(self, request: wechatpay_pb2.PayRequest, context: object) -> wechatpay_pb2.Transaction:
        note = wechatpay_pb2.NotifyRequest(body=request.out_trade_no.encode())
        task: asyncio.Task[object] = asyncio.ensure_future(self._notify.Notify(note, timeout=10))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return wechatpay_pb2.Transaction(
            out_trade_no=request.out_trade_no, trade_state=wechatpay_pb2.TRADE_STATE_SUCCESS
        )


async def serve(role: str, listen: str, card: str, payment: str, notify: str) -> None:
    # The bare servers implement only the hops of a top-up; the generated stubs declare every
    # method of each service abstract, hence the ignore[abstract] below (the rest stay UNIMPLEMENTED).
    server = grpc.aio.server()
    if role == "card":
        card_pb2_grpc.add_CardSystemServicer_to_server(BareCard(), server)  # type: ignore[abstract]
    elif role == "recharge":
        card_stub = card_pb2_grpc.CardSystemStub(grpc.aio.insecure_channel(card))
        recharge = BareRecharge(  # type: ignore[abstract]
            card_stub, wechatpay_pb2_grpc.PaymentGatewayStub(grpc.aio.insecure_channel(payment))
        )
        recharge_pb2_grpc.add_RechargeCenterServicer_to_server(recharge, server)
        wechatpay_pb2_grpc.add_PaymentNotificationsServicer_to_server(
            BareNotifications(recharge, card_stub), server
        )
    else:
        wechat = BareWechat(  # type: ignore[abstract]
            wechatpay_pb2_grpc.PaymentNotificationsStub(grpc.aio.insecure_channel(notify))
        )
        wechatpay_pb2_grpc.add_PaymentGatewayServicer_to_server(wechat, server)
        wechatpay_pb2_grpc.add_PayerSimulatorServicer_to_server(wechat, server)
    port = server.add_insecure_port(listen)
    await server.start()
    print(f"PORT {port}", flush=True)
    await server.wait_for_termination()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench.bare", description=__doc__)
    parser.add_argument("--role", choices=("card", "recharge", "wechat"), required=True)
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--card-target", default="")
    parser.add_argument("--payment-target", default="")
    parser.add_argument("--notify-target", default="")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.role, args.listen, args.card_target, args.payment_target, args.notify_target))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
