"""`make run`: start the card system, recharge center and WeChat Pay simulator; Ctrl-C stops all.

State lives under var/ (SQLite files, WeChat keys, logs). Two demo merchants are opened on every
start (idempotently: one an operator changed since is left as it is), each with its own bonus rule
and two demo cards: "teahouse" paid in WeChat Pay's direct mode (its own mchid and keys) and
"bakery" in partner mode (the provider's sp_mchid + its sub_mchid).
Ports: recharge center 50051, card system 50052, WeChat Pay simulator 50053.
Plaintext on 127.0.0.1 by default; ``--tls`` makes a development CA and certificates under
var/tls/ and runs every service with mutual TLS. Either way an operator token (every role) is
written to var/ops.token; the banner shows how to pass it. ``--wire http``: the recharge center
pays through WeChat Pay APIv3 over HTTPS (the simulator's facade) and takes notifications on its
HTTPS endpoint (``scripts.stack``: wire "http"); the banner shows both URLs.
The operators' web console starts last (port 8080; ``scripts.console``), with three development
accounts — a viewer, an operator and an approver — whose random passwords are in
var/console/dev-passwords.txt (mode 0600); the banner shows its URL and that file.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from scripts.console import console_dir, console_process, dev_accounts
from scripts.merchants import DEMO_MERCHANTS, direct_merchants_flag, open_merchants
from scripts.stack import ROOT, WIRES, ServiceProcess, Stack, build_stack, start_stack

#: Where `make run` listens, and where ``scripts.pos_demo`` looks by default.
DEFAULT_PORTS = (50051, 50052, 50053)  # recharge center, card system, WeChat Pay simulator
#: The operators' web console.
CONSOLE_PORT = 8080


def grpcurl_flags(stack: Stack, identity: str) -> str:
    """grpcurl's transport flags for a client with ``identity``'s certificate (TLS), else -plaintext."""
    if not stack.tls:
        return "-plaintext"
    folder = stack.tls_dir(identity)
    return f"-cacert {folder}/ca.crt -cert {folder}/tls.crt -key {folder}/tls.key"


def console_notes(stack: Stack, console: ServiceProcess, passwords: Path) -> list[str]:
    scheme = "https" if stack.tls else "http"
    accounts = console_dir(stack) / "accounts.json"
    trust = [f"  (HTTPS with the development CA's certificate: trust {stack.workdir / 'tls' / 'ca.crt'} or accept it)"] if stack.tls else []
    return [
        "",
        f"Operators' console: {scheme}://{console.address}/",
        *trust,
        f"  log in as dev-viewer, dev-operator or dev-approver; their passwords: {passwords}",
        f"  another operator: .venv/bin/python -m recharge_service.console --accounts-file {accounts} add-operator NAME --role operator [--role approver]",
    ]


def banner(notes: list[str], stack: Stack, console: list[str] | None = None) -> str:
    grpcurl = f".venv/bin/grpcurl {grpcurl_flags(stack, 'pos')}"
    as_operator = f".venv/bin/grpcurl {grpcurl_flags(stack, 'ops')} -H \"authorization: Bearer $(cat {stack.token_path})\""
    recharge, card, wechat = stack.recharge.address, stack.card.address, stack.wechat.address
    targets = ""
    if (recharge, card, wechat) != tuple(f"127.0.0.1:{port}" for port in DEFAULT_PORTS):
        targets = f" --recharge {recharge} --card {card} --wechat {wechat}"
    if stack.tls:
        targets += f" --tls-dir {stack.tls_dir('pos')}"
    pos_demo = f".venv/bin/python -m scripts.pos_demo{targets}"
    ops_tls = f" --tls-dir {stack.tls_dir('ops')}" if stack.tls else ""
    ops_cli = f".venv/bin/python -m recharge_service.ops --target {recharge}{ops_tls} --token-file {stack.token_path}"
    lines = [
        "",
        "Recharge center is up:",
        f"  recharge center  {recharge}   (recharge.v1.RechargeCenter, RechargeOps, wechatpay.v1.PaymentNotifications)",
        f"  card system      {card}   (card.v1.CardSystem, CardAdmin, faults.v1.FaultControl)",
        f"  WeChat Pay sim   {wechat}   (wechatpay.v1.PaymentGateway, PayerSimulator, MessageSimulator, FaultControl)",
        *[f"  {n}" for n in notes],
        "",
        "Prometheus metrics (loopback only; alert rules: deploy/prometheus/alerts.yml):",
        *[f"  {s.name:<16} {s.metrics_url}" for s in stack.services],
        "",
        "Try a top-up:",
        f"  {pos_demo}                     # teahouse: create, pay, wait for the credit, spend",
        f"  {pos_demo} --merchant bakery   # the same for the partner-mode merchant",
        f"  {grpcurl} {recharge} list",
        f"  {grpcurl} -d '{{\"merchant_id\":\"teahouse\",\"card_no\":\"8800000000000001\",\"pay_amount_fen\":100000,"
        f"\"channel\":\"CHANNEL_POS\",\"idempotency_key\":\"demo-1\",\"payer_openid\":\"o-demo\"}}' "
        f"{recharge} recharge.v1.RechargeCenter/CreateRechargeOrder",
        f"  {grpcurl} -d '{{\"out_trade_no\":\"ORDER_NO\"}}' {wechat} wechatpay.v1.PayerSimulator/Pay",
        f"  {grpcurl} -d '{{\"merchant_id\":\"teahouse\",\"card_no\":\"8800000000000001\"}}' {card} card.v1.CardSystem/GetCard",
        "",
        f"As an operator (token with every role: {stack.token_path}; RechargeOps, CardAdmin, FaultControl):",
        f"  {ops_cli} anomalies",
        f"  {as_operator} -d '{{}}' {recharge} recharge.v1.RechargeOps/ListMerchants",
        f"  or: export RC_OPS_TOKEN=$(cat {stack.token_path})   (the ops CLI and scripts read it)",
        *(console or []),
        "",
        f"Logs: {stack.workdir / 'logs'}/*.log    Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def wire_notes(stack: Stack) -> list[str]:
    """The HTTP wire's addresses (none on the gRPC wire)."""
    if stack.wire != "http":
        return []
    facade_ca = stack.keys_dir / "http-tls" / "tls.crt"
    return [
        f"payment wire: WeChat Pay APIv3 over HTTPS at {stack.wechatpay_base_url}/v3/… (CA: {facade_ca})",
        f"notifications: POSTed to {stack.notify_url} (the first replica's endpoint)",
    ]


def ports(text: str) -> tuple[int, int, int]:
    try:
        recharge, card, wechat = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("three port numbers: RECHARGE,CARD,WECHAT") from None
    return recharge, card, wechat


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--var", default=str(ROOT / "var"), help="state directory")
    parser.add_argument(
        "--ports",
        type=ports,
        default=DEFAULT_PORTS,
        help="RECHARGE,CARD,WECHAT ports; 0 = any free one (default: 50051,50052,50053)",
    )
    parser.add_argument("--tls", action="store_true", help="mutual TLS between everything (certs in VAR/tls)")
    parser.add_argument(
        "--wire",
        choices=WIRES,
        default="grpc",
        help="the payment wire: grpc (the simulator's gRPC contract) or http (WeChat Pay APIv3 over HTTPS)",
    )
    parser.add_argument(
        "--console-port", type=int, default=CONSOLE_PORT, help="the operators' web console (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    stack = build_stack(
        Path(args.var), wechat_args=direct_merchants_flag(DEMO_MERCHANTS), tls=args.tls, wire=args.wire
    )
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    recharge_port, card_port, wechat_port = args.ports
    console: ServiceProcess | None = None
    try:
        start_stack(stack, host=args.host, ports=(card_port, recharge_port, wechat_port))
        notes = asyncio.run(
            open_merchants(
                stack.recharge.address, stack.card.address, stack.keys_dir, DEMO_MERCHANTS, stack.client_auth()
            )
        )
        accounts, passwords = dev_accounts(console_dir(stack))
        console = console_process(stack, accounts)
        console.start(f"{args.host}:{args.console_port}")
        print(banner([*notes, *wire_notes(stack)], stack, console_notes(stack, console, passwords)), flush=True)
        while not stopping:
            for service in (*stack.services, console):
                if service.process is not None and service.process.poll() is not None:
                    print(f"{service.name} exited ({service.process.returncode}); see {service.log_path}")
                    print(service.tail())
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping...", flush=True)
        if console is not None:
            console.stop()
        stack.stop()
        print("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
