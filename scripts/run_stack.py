"""`make run`: start the card system, recharge center and WeChat Pay simulator; Ctrl-C stops all.

State lives under var/ (SQLite files, WeChat keys, logs). Two demo cards and a bonus rule are set
up on first start. Ports: recharge center 50051, card system 50052, WeChat Pay simulator 50053.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

import grpc

from protos.card.v1 import card_pb2, card_pb2_grpc
from scripts.stack import ROOT, build_stack, start_stack

DEMO_CARDS = (("8800000000000001", "Demo Customer A"), ("8800000000000002", "Demo Customer B"))
DEMO_RULE = ((100_000, 20_000), (50_000, 8_000), (20_000, 2_000))  # pay >= ¥1000 get ¥200, ...


async def seed_demo_data(card_address: str) -> list[str]:
    notes: list[str] = []
    async with grpc.aio.insecure_channel(card_address) as channel:
        admin = card_pb2_grpc.CardAdminStub(channel)
        try:
            rule = await admin.GetRechargeRule(card_pb2.GetRechargeRuleRequest(), timeout=5)
            if not rule.tiers:
                rule = await admin.SetRechargeRule(
                    card_pb2.SetRechargeRuleRequest(
                        tiers=[card_pb2.BonusTier(min_pay_fen=p, bonus_fen=b) for p, b in DEMO_RULE]
                    ),
                    timeout=5,
                )
            notes.append(f"bonus rule v{rule.version}: " + ", ".join(
                f"pay >= ¥{t.min_pay_fen / 100:.0f} get ¥{t.bonus_fen / 100:.0f}" for t in rule.tiers))
            for card_no, holder in DEMO_CARDS:
                try:
                    await admin.OpenCard(card_pb2.OpenCardRequest(card_no=card_no, holder_name=holder), timeout=5)
                except grpc.aio.AioRpcError as error:
                    if error.code() not in (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION):
                        raise
                notes.append(f"demo card {card_no} ({holder})")
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            notes.append("card system does not implement CardAdmin yet: no demo data")
    return notes


def banner(notes: list[str], host: str) -> str:
    grpcurl = ".venv/bin/grpcurl -plaintext"
    lines = [
        "",
        "Recharge center is up:",
        f"  recharge center  {host}:50051   (recharge.v1.RechargeCenter, RechargeOps, wechatpay.v1.PaymentNotifications)",
        f"  card system      {host}:50052   (card.v1.CardSystem, CardAdmin, faults.v1.FaultControl)",
        f"  WeChat Pay sim   {host}:50053   (wechatpay.v1.PaymentGateway, PayerSimulator, MessageSimulator, FaultControl)",
        *[f"  {n}" for n in notes],
        "",
        "Try a top-up:",
        "  .venv/bin/python -m scripts.pos_demo            # create, pay, wait for the credit, spend",
        f"  {grpcurl} {host}:50051 list",
        f"  {grpcurl} -d '{{\"card_no\":\"8800000000000001\",\"pay_amount_fen\":100000,"
        f"\"channel\":\"CHANNEL_POS\",\"idempotency_key\":\"demo-1\",\"payer_openid\":\"o-demo\"}}' "
        f"{host}:50051 recharge.v1.RechargeCenter/CreateRechargeOrder",
        f"  {grpcurl} -d '{{\"out_trade_no\":\"ORDER_NO\"}}' {host}:50053 wechatpay.v1.PayerSimulator/Pay",
        f"  {grpcurl} -d '{{\"card_no\":\"8800000000000001\"}}' {host}:50052 card.v1.CardSystem/GetCard",
        "",
        "Logs: var/logs/*.log    Ctrl-C stops all three.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--var", default=str(ROOT / "var"), help="state directory")
    args = parser.parse_args()
    stack = build_stack(Path(args.var))
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        start_stack(stack, host=args.host, ports=(50052, 50051, 50053))
        notes = asyncio.run(seed_demo_data(stack.card.address))
        print(banner(notes, args.host), flush=True)
        while not stopping:
            for service in stack.services:
                if service.process is not None and service.process.poll() is not None:
                    print(f"{service.name} exited ({service.process.returncode}); see {service.log_path}")
                    print(service.tail())
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping...", flush=True)
        stack.stop()
        print("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
