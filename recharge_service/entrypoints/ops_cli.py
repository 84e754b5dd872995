"""The operator CLI: ``python -m recharge_service.ops`` (a RechargeOps client; plain text tables).

    anomalies [--status S ...] [--min-age SECONDS]   orders to look at, oldest change first
    timeline ORDER_NO                                 an order's whole history
    order ORDER_NO                                    one order
    resolve ORDER_NO --action A --operator NAME --reason TEXT
                                                      retry-now | refund | confirm-credit
    sentinel [--ignore-hold]                          run the sentinel now, print its report

Exit status: 0 done, 1 the service refused or failed (the reason is printed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.clock import CHINA, duration
from rc_common.grpc_status import error_info

ACTIONS = {
    "retry-now": recharge_pb2.RESOLVE_ACTION_RETRY_NOW,
    "refund": recharge_pb2.RESOLVE_ACTION_REFUND,
    "confirm-credit": recharge_pb2.RESOLVE_ACTION_CONFIRM_CREDIT,
}
WIDEST = 48  # cells are cut to this many characters, except the last column


def status_name(value: int) -> str:
    return str(recharge_pb2.OrderStatus.Name(value)).removeprefix("ORDER_STATUS_")  # type: ignore[arg-type]


def status_value(text: str) -> int:
    name = "ORDER_STATUS_" + text.strip().upper().replace("-", "_").removeprefix("ORDER_STATUS_")
    try:
        return int(recharge_pb2.OrderStatus.Value(name))
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown status {text!r}") from None


def when(stamp: Any) -> str:
    if not stamp.seconds and not stamp.nanos:
        return ""
    moment = datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9, UTC).astimezone(CHINA)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[" ".join(str(c).split()) for c in row] for row in rows]
    last = len(headers) - 1

    def fit(i: int, cell: str) -> str:
        return cell if i == last or len(cell) <= WIDEST else cell[: WIDEST - 1] + "…"

    cut = [[fit(i, c) for i, c in enumerate(r)] for r in cells]
    widths = [max([len(h), *(len(r[i]) for r in cut)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cut]
    return "\n".join(lines)


def show_anomalies(ops: recharge_pb2_grpc.RechargeOpsStub, args: argparse.Namespace) -> str:
    rows: list[tuple[object, ...]] = []
    token = ""
    while len(rows) < args.limit:
        page = ops.ListAnomalies(
            recharge_pb2.ListAnomaliesRequest(
                statuses=args.status or [],
                min_age_seconds=args.min_age,
                page=recharge_pb2.PageRequest(page_size=min(args.limit - len(rows), 500), page_token=token),
            ),
            timeout=args.timeout,
        )
        for a in page.anomalies:
            said = (a.reason,) if a.last_error in a.reason else (a.last_error, a.reason)
            problem = " | ".join(part for part in said if part)
            status = status_name(a.order.status)
            age = duration(timedelta(seconds=a.age_seconds))
            rows.append((a.order.order_no, status, age, a.attempts, problem))
        token = page.next_page_token
        if not token:
            break
    more = " (more: raise --limit)" if token else ""
    return table(("ORDER_NO", "STATUS", "AGE", "ATTEMPTS", "LAST ERROR | REASON"), rows) + (
        f"\n{len(rows)} anomalies{more}"
    )


def show_timeline(ops: recharge_pb2_grpc.RechargeOpsStub, args: argparse.Namespace) -> str:
    request = recharge_pb2.GetOrderTimelineRequest(order_no=args.order_no)
    reply = ops.GetOrderTimeline(request, timeout=args.timeout)
    rows: list[tuple[object, ...]] = []
    for e in reply.events:
        change = f"{status_name(e.from_status)}->{status_name(e.to_status)}" if e.to_status else ""
        took = f"{e.latency_ms}ms" if e.kind == "remote_call" else ""
        note = " | ".join(part for part in (e.detail, e.error) if part)
        rows.append(
            (
                e.seq,
                when(e.at),
                e.kind,
                e.actor,
                change.replace("UNSPECIFIED", ""),
                e.method,
                e.outcome,
                took,
                note,
            )
        )
    headers = ("SEQ", "AT (UTC+8)", "KIND", "ACTOR", "CHANGE", "METHOD", "OUTCOME", "TOOK", "DETAIL | ERROR")
    return f"timeline of {reply.order_no}\n" + table(headers, rows)


def show_order(order: recharge_pb2.RechargeOrder) -> str:
    fields = [
        ("order_no", order.order_no),
        ("status", status_name(order.status)),
        ("card_no", order.card_no),
        ("channel", recharge_pb2.Channel.Name(order.channel).removeprefix("CHANNEL_")),
        ("pay_amount_fen", order.pay_amount_fen),
        ("bonus_fen", order.bonus_fen),
        ("credit_amount_fen", order.credit_amount_fen),
        ("transaction_id", order.transaction_id),
        ("out_refund_no", order.out_refund_no),
        ("failure_reason", order.failure_reason),
        ("created_at", when(order.created_at)),
        ("updated_at", when(order.updated_at)),
        ("paid_at", when(order.paid_at)),
        ("expires_at", when(order.expires_at)),
        ("version", order.version),
    ]
    width = max(len(name) for name, _ in fields)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in fields)


def get_order(channel: grpc.Channel, args: argparse.Namespace) -> str:
    center = recharge_pb2_grpc.RechargeCenterStub(channel)
    return show_order(
        center.GetRechargeOrder(
            recharge_pb2.GetRechargeOrderRequest(order_no=args.order_no), timeout=args.timeout
        )
    )


def resolve(ops: recharge_pb2_grpc.RechargeOpsStub, args: argparse.Namespace) -> str:
    reply = ops.ResolveAnomaly(
        recharge_pb2.ResolveAnomalyRequest(
            order_no=args.order_no, action=ACTIONS[args.action], operator=args.operator, reason=args.reason
        ),
        timeout=args.timeout,
    )
    return f"{reply.order.order_no}: {status_name(reply.order.status)}\noutcome: {reply.outcome}"


def run_sentinel(ops: recharge_pb2_grpc.RechargeOpsStub, args: argparse.Namespace) -> str:
    request = recharge_pb2.RunSentinelRequest(ignore_hold=args.ignore_hold)
    report = ops.RunSentinel(request, timeout=args.timeout)
    names = (
        "examined",
        "credited",
        "refunded",
        "closed",
        "refunding",
        "still_unknown",
        "manual_review",
        "skipped",
        "duration_ms",
    )
    width = max(len(n) for n in names)
    return "sentinel run\n" + "\n".join(f"  {n.ljust(width)}  {getattr(report, n)}" for n in names)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m recharge_service.ops",
        description="Operator tools for the recharge center: anomalies, timelines, fenced manual actions, "
        "the sentinel. Every action needs an operator name and a reason and lands in the order's timeline.",
    )
    top.add_argument(
        "--target",
        default=os.environ.get("RECHARGE_OPS_TARGET", "127.0.0.1:50051"),
        help="recharge center host:port [env RECHARGE_OPS_TARGET] (default: %(default)s)",
    )
    top.add_argument("--timeout", type=float, default=120.0, help="seconds per call (default: %(default)s)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "anomalies",
        help="orders to look at, oldest change first",
        description="CREDIT_UNKNOWN, REFUNDING, MANUAL_REVIEW and PAID older than the hold "
        "(or the --status given), oldest change first.",
    )
    p.add_argument(
        "--status",
        type=status_value,
        action="append",
        metavar="S",
        help="only this status (repeatable), e.g. MANUAL_REVIEW or credit-unknown",
    )
    p.add_argument("--min-age", type=int, default=0, metavar="SECONDS", help="unchanged at least this long")
    p.add_argument("--limit", type=int, default=200, help="at most this many rows (default: %(default)s)")
    p = sub.add_parser(
        "timeline",
        help="an order's timeline",
        description="Every state change, remote "
        "attempt, notification, follow-up delivery, sentinel visit and operator action.",
    )
    p.add_argument("order_no")
    p = sub.add_parser("order", help="one order", description="The order's fields.")
    p.add_argument("order_no")
    p = sub.add_parser(
        "resolve",
        help="a fenced operator action on one order",
        description="retry-now: the sentinel's step now (ignores the hold); refund: void "
        "first, then refund (refused if the card says credited); confirm-credit: CREDITED "
        "only when the card system says SUCCEEDED.",
    )
    p.add_argument("order_no")
    p.add_argument("--action", required=True, choices=sorted(ACTIONS))
    p.add_argument("--operator", required=True, help="who is acting")
    p.add_argument("--reason", required=True, help="why (kept in the timeline)")
    p = sub.add_parser(
        "sentinel",
        help="run the sentinel now and print its report",
        description="Runs the sentinel once now (waits if a run is in progress).",
    )
    p.add_argument("--ignore-hold", action="store_true", help="also take orders changed within the hold")
    return top


COMMANDS: dict[str, Callable[[grpc.Channel, argparse.Namespace], str]] = {
    "anomalies": lambda ch, a: show_anomalies(recharge_pb2_grpc.RechargeOpsStub(ch), a),
    "timeline": lambda ch, a: show_timeline(recharge_pb2_grpc.RechargeOpsStub(ch), a),
    "order": get_order,
    "resolve": lambda ch, a: resolve(recharge_pb2_grpc.RechargeOpsStub(ch), a),
    "sentinel": lambda ch, a: run_sentinel(recharge_pb2_grpc.RechargeOpsStub(ch), a),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with grpc.insecure_channel(args.target) as channel:
        try:
            print(COMMANDS[args.command](channel, args))
        except grpc.RpcError as error:
            info = error_info(error)
            reason = f" {info.reason}" if info is not None and info.reason else ""
            print(f"error: {error.code().name}{reason}: {error.details()}", file=sys.stderr)
            return 1
    return 0
