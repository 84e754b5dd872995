"""What a POS gateway does: top up a card, let the customer pay, wait for the credit, spend.

Uses only the generated stubs (``protos.*``) and grpc — copy it as a starting point (the demo
merchants' card numbers, from ``scripts.merchants``, only fill in the default card). Against
services with TLS, ``--tls-dir`` is the POS's certificate (``python -m scripts.certs``: ``pos/``):
its identity ``pos`` may call RechargeCenter, the card system's GetCard and Consume, and the payer
simulator; without it the demo calls in plaintext, as an anonymous loopback caller.

    .venv/bin/python -m scripts.pos_demo                      # against `make run`: the tea house
    .venv/bin/python -m scripts.pos_demo --merchant bakery    # the partner-mode merchant's card
    .venv/bin/python -m scripts.pos_demo --pay-fen 50000 --spend-fen 1200

The POS sells for one merchant (--merchant) and names it on every call: the card must be that
merchant's (another merchant's card is refused as CARD_NOT_FOUND), the bonus follows that
merchant's rule, and the customer pays into that merchant's WeChat Pay account.

Steps: CardSystem.GetCard (balance before) -> RechargeCenter.CreateRechargeOrder (channel POS, a
fresh idempotency key; on UNAVAILABLE retry with the SAME key) -> PayerSimulator.Pay (the customer
pays in WeChat) -> RechargeCenter.GetRechargeOrder until CREDITED (or another end) ->
CardSystem.GetCard (balance after) -> CardSystem.Consume (spend part of it at once).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import grpc

from protos.card.v1 import card_pb2, card_pb2_grpc
from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from scripts.merchants import DEMO_MERCHANTS, demo_merchant

ENDED = {
    recharge_pb2.ORDER_STATUS_CREDITED,
    recharge_pb2.ORDER_STATUS_REFUNDED,
    recharge_pb2.ORDER_STATUS_CLOSED,
    recharge_pb2.ORDER_STATUS_REJECTED,
    recharge_pb2.ORDER_STATUS_MANUAL_REVIEW,
}


def yuan(fen: int) -> str:
    return f"¥{fen / 100:,.2f}"


def status_name(status: recharge_pb2.OrderStatus.ValueType) -> str:
    return recharge_pb2.OrderStatus.Name(status).removeprefix("ORDER_STATUS_")


async def create_order(
    center: recharge_pb2_grpc.RechargeCenterStub, request: recharge_pb2.CreateRechargeOrderRequest
) -> recharge_pb2.RechargeOrder:
    """Create the order; while the answer is UNAVAILABLE, retry with the same idempotency key."""
    for attempt in range(1, 6):
        try:
            order: recharge_pb2.RechargeOrder = await center.CreateRechargeOrder(request, timeout=10)
            return order
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == 5:
                raise
            print(f"   not decided yet ({error.details()}); retrying with the same key ...")
            await asyncio.sleep(attempt)
    raise AssertionError("unreachable")


async def wait_for_end(
    center: recharge_pb2_grpc.RechargeCenterStub, merchant_id: str, order_no: str, within: float
) -> recharge_pb2.RechargeOrder:
    deadline = time.monotonic() + within
    last = -1
    while True:
        request = recharge_pb2.GetRechargeOrderRequest(order_no=order_no, merchant_id=merchant_id)
        order: recharge_pb2.RechargeOrder = await center.GetRechargeOrder(request, timeout=5)
        if order.status != last:
            print(f"   status {status_name(order.status)}")
            last = order.status
        if order.status in ENDED or time.monotonic() > deadline:
            return order
        await asyncio.sleep(0.2)


def open_channel(target: str, tls_dir: str) -> grpc.aio.Channel:
    """Mutual TLS with the POS certificate in ``tls_dir`` (ca.crt, tls.crt, tls.key), else plaintext."""
    if not tls_dir:
        return grpc.aio.insecure_channel(target)
    folder = Path(tls_dir)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(folder / "ca.crt").read_bytes(),
        private_key=(folder / "tls.key").read_bytes(),
        certificate_chain=(folder / "tls.crt").read_bytes(),
    )
    return grpc.aio.secure_channel(target, credentials)


async def run(args: argparse.Namespace) -> int:
    async with (
        open_channel(args.recharge, args.tls_dir) as recharge_channel,
        open_channel(args.card, args.tls_dir) as card_channel,
        open_channel(args.wechat, args.tls_dir) as wechat_channel,
    ):
        center = recharge_pb2_grpc.RechargeCenterStub(recharge_channel)
        cards = card_pb2_grpc.CardSystemStub(card_channel)
        payer = wechatpay_pb2_grpc.PayerSimulatorStub(wechat_channel)

        merchant_id, card_no = args.merchant, args.card_no
        card = card_pb2.GetCardRequest(card_no=card_no, merchant_id=merchant_id)
        before = await cards.GetCard(card, timeout=5)
        print(f"1. merchant {merchant_id}, card {before.card_no} ({before.holder_name}): "
              f"balance {yuan(before.balance_fen)}")

        key = f"pos-demo-{uuid.uuid4().hex}"
        order = await create_order(center, recharge_pb2.CreateRechargeOrderRequest(
            merchant_id=merchant_id, card_no=card_no, pay_amount_fen=args.pay_fen,
            channel=recharge_pb2.CHANNEL_POS, idempotency_key=key, payer_openid=args.openid,
        ))
        print(f"2. order {order.order_no} ({status_name(order.status)}): pay {yuan(order.pay_amount_fen)}, "
              f"bonus {yuan(order.bonus_fen)}, credit {yuan(order.credit_amount_fen)}")
        print(f"   prepay id {order.prepay_id} (a POS shows it as a QR code)")

        paid = await payer.Pay(wechatpay_pb2.PayRequest(out_trade_no=order.order_no), timeout=10)
        print(f"3. customer paid {yuan(paid.amount_total_fen)} in WeChat, transaction {paid.transaction_id}")

        print("4. waiting for the recharge center ...")
        order = await wait_for_end(center, merchant_id, order.order_no, args.wait)
        if order.status != recharge_pb2.ORDER_STATUS_CREDITED:
            print(f"   order ended {status_name(order.status)} {order.failure_reason}".rstrip())
            return 1

        after = await cards.GetCard(card, timeout=5)
        print(f"5. balance {yuan(before.balance_fen)} -> {yuan(after.balance_fen)} "
              f"(+{yuan(after.balance_fen - before.balance_fen)})")

        # The card's merchant: a card is spent only where it was issued.
        spent = await cards.Consume(card_pb2.ConsumeRequest(
            request_id=f"pos-demo-spend-{uuid.uuid4().hex}", card_no=card_no, amount_fen=args.spend_fen,
            merchant_id=merchant_id,
        ), timeout=5)
        print(f"6. spent {yuan(spent.amount_fen)} at {merchant_id}: balance {yuan(spent.balance_after_fen)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.pos_demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recharge", default="127.0.0.1:50051", help="recharge center host:port")
    parser.add_argument("--card", default="127.0.0.1:50052", help="card system host:port")
    parser.add_argument("--wechat", default="127.0.0.1:50053", help="WeChat Pay simulator host:port")
    parser.add_argument(
        "--tls-dir", default="", help="the POS's ca.crt, tls.crt, tls.key, for services with TLS"
    )
    demos = ", ".join(f"{m.merchant_id} ({m.mode} mode)" for m in DEMO_MERCHANTS)
    parser.add_argument(
        "--merchant",
        default=DEMO_MERCHANTS[0].merchant_id,
        help="the merchant this POS sells for (its merchant_id): named on every call, the card must "
        f"be this merchant's and the bonus follows its rule; `make run` opens {demos} "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--card-no",
        default="",
        help="card to top up, one of the merchant's (default: the demo merchant's first demo card)",
    )
    parser.add_argument("--pay-fen", type=int, default=100_000, help="amount the customer pays, in fen")
    parser.add_argument("--spend-fen", type=int, default=5_000, help="amount spent right after, in fen")
    parser.add_argument("--openid", default="o-pos-demo-customer", help="the paying customer's WeChat openid")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the order to end")
    args = parser.parse_args(argv)
    if not args.card_no:
        demo = demo_merchant(args.merchant)
        if demo is None or not demo.first_card:
            parser.error(f"--card-no is required: {args.merchant} is not a demo merchant with demo cards")
        args.card_no = demo.first_card
    try:
        return asyncio.run(run(args))
    except grpc.aio.AioRpcError as error:
        print(f"failed: {error.code().name}: {error.details()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
