"""The operator CLI: ``python -m recharge_service.ops`` (a RechargeOps client; plain text tables).

    anomalies [--status S ...] [--min-age SECONDS]   orders to look at, oldest change first
    timeline ORDER_NO                                 an order's whole history
    order ORDER_NO                                    one order
    resolve ORDER_NO --action A --reason TEXT
                                                      retry-now | refund | confirm-credit
    sentinel [--ignore-hold]                          run the sentinel now, print its report
    merchant-put --merchant-id ID [config flags] --reason TEXT
                                                      create a merchant, or change the flags given
    merchant-get MERCHANT_ID                          one merchant's configuration and history
    merchant-list                                     every merchant
    reconcile run DATE | reconcile show DATE [--csv]  the daily reconciliation (see ops_reconcile)
    approvals | approve ID --reason | reject ID --reason
                                                      four eyes on refunds (see ops_approvals)

Every call carries an operator token (``--token-file FILE`` or ``$RC_OPS_TOKEN``; ``make run``
writes one to var/ops.token, ``python -m scripts.tokens`` issues them): the operator recorded on a
timeline or a merchant's history is the token's subject. ``--tls-dir`` for a server with TLS.

Exit status: 0 done, 1 the service refused or failed (the reason is printed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.channels import TOKEN_ENV, ClientAuth, sync_channel
from rc_common.clock import CHINA, duration
from rc_common.grpc_status import error_info
from recharge_service.entrypoints.ops_approvals import (
    add_approval_commands,
    approval_line,
    decide,
    show_approvals,
)
from recharge_service.entrypoints.ops_reconcile import add_reconcile_commands, reconcile

ACTIONS = {
    "retry-now": recharge_pb2.RESOLVE_ACTION_RETRY_NOW,
    "refund": recharge_pb2.RESOLVE_ACTION_REFUND,
    "confirm-credit": recharge_pb2.RESOLVE_ACTION_CONFIRM_CREDIT,
}
WIDEST = 48  # cells are cut to this many characters, except the last column


DEPRECATED_OPERATOR = "deprecated and ignored: the operator recorded is your token's subject"

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
                merchant_id=args.merchant_id,
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
            rows.append((a.order.order_no, a.order.merchant_id, status, age, a.attempts, problem))
        token = page.next_page_token
        if not token:
            break
    more = " (more: raise --limit)" if token else ""
    return table(("ORDER_NO", "MERCHANT", "STATUS", "AGE", "ATTEMPTS", "LAST ERROR | REASON"), rows) + (
        f"\n{len(rows)} anomalies{more}"
    )


def show_timeline(ops: recharge_pb2_grpc.RechargeOpsStub, args: argparse.Namespace) -> str:
    request = recharge_pb2.GetOrderTimelineRequest(order_no=args.order_no, merchant_id=args.merchant_id)
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
                e.node,
                change.replace("UNSPECIFIED", ""),
                e.method,
                e.outcome,
                took,
                note,
            )
        )
    headers = (
        "SEQ", "AT (UTC+8)", "KIND", "ACTOR", "NODE", "CHANGE", "METHOD", "OUTCOME", "TOOK", "DETAIL | ERROR"
    )  # fmt: skip
    return f"timeline of {reply.order_no}\n" + table(headers, rows)


def show_order(order: recharge_pb2.RechargeOrder) -> str:
    fields = [
        ("order_no", order.order_no),
        ("merchant", f"{order.merchant_id} (configuration v{order.merchant_version})"),
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
            recharge_pb2.GetRechargeOrderRequest(merchant_id=args.merchant_id, order_no=args.order_no),
            timeout=args.timeout,
        )
    )


def resolve(ops: recharge_pb2_grpc.RechargeOpsStub, args: argparse.Namespace) -> str:
    reply = ops.ResolveAnomaly(
        recharge_pb2.ResolveAnomalyRequest(
            order_no=args.order_no,
            action=ACTIONS[args.action],
            reason=args.reason,
            merchant_id=args.merchant_id,
        ),
        timeout=args.timeout,
    )
    shown = f"{reply.order.order_no}: {status_name(reply.order.status)}\noutcome: {reply.outcome}"
    return f"{shown}\n{approval_line(reply.approval)}" if reply.approval.approval_id else shown


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


# -- merchants ---------------------------------------------------------------------------------

WECHAT_MODES = {"partner": recharge_pb2.WECHAT_MODE_PARTNER, "direct": recharge_pb2.WECHAT_MODE_DIRECT}
CHANNELS = ("OFFICIAL_ACCOUNT", "POS", "THIRD_PARTY")


def channel_name(value: int) -> str:
    return str(recharge_pb2.Channel.Name(value)).removeprefix("CHANNEL_")  # type: ignore[arg-type]


def channel_value(text: str) -> int:
    name = text.strip().upper().replace("-", "_").removeprefix("CHANNEL_")
    if name not in CHANNELS:
        raise argparse.ArgumentTypeError(f"unknown channel {text!r} (one of {', '.join(CHANNELS)})")
    return int(recharge_pb2.Channel.Value("CHANNEL_" + name))


def channel_list(text: str) -> list[int]:
    values = [channel_value(part) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError("at least one channel")
    return sorted(set(values))


def callback_value(text: str) -> tuple[int, str]:
    """``CHANNEL=host:port``; ``CHANNEL=`` (empty) removes that channel's callback."""
    channel, sep, target = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"CHANNEL=host:port expected, not {text!r}")
    return channel_value(channel), target.strip()


def wechat_mode_name(value: int) -> str:
    return next((name for name, v in WECHAT_MODES.items() if v == value), "unspecified")


def show_merchant(m: recharge_pb2.Merchant) -> str:
    expiry = duration(timedelta(seconds=m.order_expiry_seconds))
    fields = [
        ("merchant_id", m.merchant_id),
        ("display_name", m.display_name),
        ("version", m.version),
        ("updated_at", when(m.updated_at)),
        ("disabled", "yes" if m.disabled else "no"),
        ("channels", ",".join(channel_name(c) for c in m.channels)),
        ("callbacks", ", ".join(f"{channel_name(c.channel)}={c.target}" for c in m.callbacks) or "-"),
        ("order_expiry", f"{expiry} ({m.order_expiry_seconds}s)"),
        ("wechat_mode", wechat_mode_name(m.wechat.mode)),
        ("wechat_mchid", m.wechat.mchid),
        ("wechat_appid", m.wechat.appid),
        ("wechat_keys_dir", m.wechat.keys_dir),
        ("max_open_orders", m.max_open_orders or "no limit"),
        ("max_create_rate", f"{m.max_create_rate}/s" if m.max_create_rate else "no limit"),
    ]
    width = max(len(name) for name, _ in fields)
    return "\n".join(f"{name.ljust(width)}  {value}".rstrip() for name, value in fields)


def _flat(value: object, prefix: str = "") -> dict[str, object]:
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, object] = {}
    for key, inner in value.items():
        flat.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def changed_fields(before: str | None, after: str) -> str:
    """Which fields a history entry changed (from the configurations as JSON), for reading only."""
    if before is None:
        return "created"
    try:
        old, new = _flat(json.loads(before)), _flat(json.loads(after))
    except ValueError:
        return "?"
    names = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return ", ".join(n for n in names if n not in ("version", "updated_at")) or "-"


def get_merchant(ops: recharge_pb2_grpc.RechargeOpsStub, args: argparse.Namespace) -> str:
    reply = ops.GetMerchant(
        recharge_pb2.GetMerchantRequest(merchant_id=args.merchant_id), timeout=args.timeout
    )
    rows: list[tuple[object, ...]] = []
    before: str | None = None
    for change in reply.history:
        rows.append(
            (
                change.version,
                when(change.at),
                change.operator,
                changed_fields(before, change.config_json),
                change.reason,
            )
        )
        before = change.config_json
    history = table(("VERSION", "AT (UTC+8)", "OPERATOR", "CHANGED", "REASON"), rows)
    return f"{show_merchant(reply.merchant)}\n\nhistory\n{history}"


def list_merchants(ops: recharge_pb2_grpc.RechargeOpsStub, args: argparse.Namespace) -> str:
    reply = ops.ListMerchants(recharge_pb2.ListMerchantsRequest(), timeout=args.timeout)
    rows = [
        (
            m.merchant_id,
            m.version,
            "DISABLED" if m.disabled else "enabled",
            ",".join(channel_name(c) for c in m.channels),
            f"{wechat_mode_name(m.wechat.mode)} {m.wechat.mchid}",
            duration(timedelta(seconds=m.order_expiry_seconds)),
            when(m.updated_at),
            m.display_name,
        )
        for m in reply.merchants
    ]
    headers = ("MERCHANT_ID", "VERSION", "STATE", "CHANNELS", "WECHAT", "EXPIRY", "UPDATED (UTC+8)", "NAME")
    return table(headers, rows) + f"\n{len(rows)} merchants"


def put_merchant(ops: recharge_pb2_grpc.RechargeOpsStub, args: argparse.Namespace) -> str:
    """Create the merchant (it does not exist yet) or change it: its current configuration with
    only the flags given applied, based on the version read (or ``--expected-version``)."""
    merchant = recharge_pb2.Merchant()
    try:
        current = ops.GetMerchant(
            recharge_pb2.GetMerchantRequest(merchant_id=args.merchant_id), timeout=args.timeout
        )
        merchant.CopyFrom(current.merchant)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        merchant.merchant_id = args.merchant_id
        merchant.wechat.mode = WECHAT_MODES["partner"]  # a new merchant's default
    based_on = merchant.version
    merchant.ClearField("version")
    merchant.ClearField("updated_at")
    if args.display_name is not None:
        merchant.display_name = args.display_name
    if args.channels is not None:
        merchant.ClearField("channels")
        merchant.channels.extend(args.channels)
    if args.callback:
        targets = {c.channel: c.target for c in merchant.callbacks}
        for channel, target in args.callback:
            targets[channel] = target
        merchant.ClearField("callbacks")
        merchant.callbacks.extend(
            recharge_pb2.CallbackTarget(channel=c, target=t) for c, t in sorted(targets.items()) if t
        )
    if args.order_expiry is not None:
        merchant.order_expiry_seconds = args.order_expiry
    if args.wechat_mode is not None:
        merchant.wechat.mode = WECHAT_MODES[args.wechat_mode]
    for flag in ("mchid", "appid", "keys_dir"):
        value = getattr(args, f"wechat_{flag}")
        if value is not None:
            setattr(merchant.wechat, flag, value)
    for flag in ("max_open_orders", "max_create_rate", "disabled"):
        if getattr(args, flag) is not None:
            setattr(merchant, flag, getattr(args, flag))
    expected = based_on if args.expected_version is None else args.expected_version
    reply = ops.PutMerchant(
        recharge_pb2.PutMerchantRequest(
            merchant=merchant, expected_version=expected, reason=args.reason
        ),
        timeout=args.timeout,
    )
    done = "created" if reply.version == 1 else "changed"
    return f"{done} merchant {reply.merchant_id}: version {reply.version}\n{show_merchant(reply)}"


def add_merchant_commands(sub: Any) -> None:
    p = sub.add_parser(
        "merchant-put",
        help="create a merchant, or change some of its configuration",
        description="Creates the merchant if it does not exist yet (then --display-name, --channels "
        "and --wechat-mchid are needed; WeChat mode defaults to partner). Otherwise reads its current "
        "configuration, applies only the flags given and writes it as the next version, based on the "
        "version read (or --expected-version): if someone changed it meanwhile the change is refused "
        "(ABORTED) and nothing is written. Orders keep the version they were created with.",
    )
    p.add_argument("--merchant-id", required=True, help="1-32 characters of A-Z a-z 0-9 _ -")
    p.add_argument("--display-name", help="the name operators and customers see (1-64 characters)")
    p.add_argument(
        "--channels",
        type=channel_list,
        metavar="LIST",
        help="the channels that may create orders, replacing the current ones: a comma list of "
        + ", ".join(CHANNELS),
    )
    p.add_argument(
        "--callback",
        type=callback_value,
        action="append",
        metavar="CHANNEL=HOST:PORT",
        help="where that channel's RechargeCallbacks is told when an order ends (repeatable); "
        "CHANNEL= (empty) removes it; other channels keep theirs",
    )
    p.add_argument(
        "--order-expiry", type=int, metavar="SECONDS", help="the payment window (0: the server's default)"
    )
    p.add_argument("--wechat-mode", choices=sorted(WECHAT_MODES), help="partner (服务商) or direct")
    p.add_argument("--wechat-mchid", metavar="MCHID", help="direct: the mchid; partner: the sub_mchid")
    p.add_argument("--wechat-appid", metavar="APPID", help="the WeChat appid")
    p.add_argument(
        "--wechat-keys-dir",
        metavar="DIR",
        help="direct only: the merchant's bundle on the recharge center's host (the simulator's "
        "<keys-dir>/merchant/direct/<mchid>; never WeChat's private key) "
        '(--wechat-keys-dir "" clears it)',
    )
    p.add_argument(
        "--max-open-orders", type=int, metavar="N", help="orders awaiting payment at most; 0 = no limit"
    )
    p.add_argument("--max-create-rate", type=int, metavar="N", help="orders created per second; 0 = no limit")
    state = p.add_mutually_exclusive_group()
    state.add_argument(
        "--disabled", dest="disabled", action="store_const", const=True, help="refuse new orders"
    )
    state.add_argument(
        "--enabled", dest="disabled", action="store_const", const=False, help="accept them again"
    )
    p.add_argument(
        "--expected-version",
        type=int,
        metavar="N",
        help="refuse the change unless the merchant is at this version (0: only create); "
        "default: the version just read",
    )
    p.add_argument("--operator", help=DEPRECATED_OPERATOR)
    p.add_argument("--reason", required=True, help="why (kept in the merchant's history)")
    p = sub.add_parser(
        "merchant-get",
        help="one merchant's configuration and history",
        description="The current configuration, then every version: when, who, which fields changed, why.",
    )
    p.add_argument("merchant_id")
    sub.add_parser(
        "merchant-list", help="every merchant", description="Every merchant's current configuration."
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m recharge_service.ops",
        description="Operator tools for the recharge center: anomalies, timelines, fenced manual actions, "
        "the sentinel, merchants. Every action needs an operator token and a reason and lands in the "
        "order's timeline (a merchant change: in the merchant's history) under the token's subject.",
    )
    top.add_argument(
        "--target",
        default=os.environ.get("RECHARGE_OPS_TARGET", "127.0.0.1:50051"),
        help="recharge center host:port [env RECHARGE_OPS_TARGET] (default: %(default)s)",
    )
    top.add_argument(
        "--token-file",
        default=os.environ.get("RECHARGE_OPS_TOKEN_FILE", ""),
        help=f"file with your operator token [env RECHARGE_OPS_TOKEN_FILE]; else the token in ${TOKEN_ENV}",
    )
    top.add_argument(
        "--tls-dir",
        default=os.environ.get("RECHARGE_OPS_TLS_DIR", ""),
        help="ca.crt, tls.crt, tls.key for a server with TLS (python -m scripts.certs: its ops/ directory) "
        "[env RECHARGE_OPS_TLS_DIR] (default: plaintext)",
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
    p.add_argument("--merchant-id", default="", help="only this merchant's orders (default: everyone's)")
    p = sub.add_parser(
        "timeline",
        help="an order's timeline",
        description="Every state change, remote "
        "attempt, notification, follow-up delivery, sentinel visit and operator action.",
    )
    p.add_argument("order_no")
    p.add_argument("--merchant-id", default="", help="refuse (NOT_FOUND) unless the order is this merchant's")
    p = sub.add_parser(
        "order",
        help="one order",
        description="The order's fields (the merchant is required: orders are read as their merchant).",
    )
    p.add_argument("order_no")
    p.add_argument("--merchant-id", required=True, help="the order's merchant (anomalies lists it)")
    p = sub.add_parser(
        "resolve",
        help="a fenced operator action on one order",
        description="retry-now: the sentinel's step now (ignores the hold); refund: void "
        "first, then refund (refused if the card says credited; above the four-eyes threshold it "
        "waits for a second operator: see approvals); confirm-credit: CREDITED only when the card "
        "system says SUCCEEDED.",
    )
    p.add_argument("order_no")
    p.add_argument("--action", required=True, choices=sorted(ACTIONS))
    p.add_argument("--merchant-id", default="", help="refuse (NOT_FOUND) unless the order is this merchant's")
    p.add_argument("--operator", help=DEPRECATED_OPERATOR)
    p.add_argument("--reason", required=True, help="why (kept in the timeline)")
    p = sub.add_parser(
        "sentinel",
        help="run the sentinel now and print its report",
        description="Runs the sentinel once now (waits if a run is in progress).",
    )
    p.add_argument("--ignore-hold", action="store_true", help="also take orders changed within the hold")
    add_merchant_commands(sub)
    add_reconcile_commands(sub)
    add_approval_commands(sub)
    return top


COMMANDS: dict[str, Callable[[grpc.Channel, argparse.Namespace], str]] = {
    "anomalies": lambda ch, a: show_anomalies(recharge_pb2_grpc.RechargeOpsStub(ch), a),
    "timeline": lambda ch, a: show_timeline(recharge_pb2_grpc.RechargeOpsStub(ch), a),
    "order": get_order,
    "resolve": lambda ch, a: resolve(recharge_pb2_grpc.RechargeOpsStub(ch), a),
    "sentinel": lambda ch, a: run_sentinel(recharge_pb2_grpc.RechargeOpsStub(ch), a),
    "merchant-put": lambda ch, a: put_merchant(recharge_pb2_grpc.RechargeOpsStub(ch), a),
    "merchant-get": lambda ch, a: get_merchant(recharge_pb2_grpc.RechargeOpsStub(ch), a),
    "merchant-list": lambda ch, a: list_merchants(recharge_pb2_grpc.RechargeOpsStub(ch), a),
    "reconcile": reconcile,
    "approvals": lambda ch, a: show_approvals(recharge_pb2_grpc.RechargeOpsStub(ch), a),
    "approve": lambda ch, a: decide(recharge_pb2_grpc.RechargeOpsStub(ch), a),
    "reject": lambda ch, a: decide(recharge_pb2_grpc.RechargeOpsStub(ch), a),
}


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    try:
        client = ClientAuth.from_options(args.tls_dir, args.token_file)
    except ValueError as exc:  # a token file or TLS directory that cannot be read
        top.error(str(exc))
    with sync_channel(args.target, client) as channel:
        try:
            print(COMMANDS[args.command](channel, args))
        except grpc.RpcError as error:
            info = error_info(error)
            reason = f" {info.reason}" if info is not None and info.reason else ""
            print(f"error: {error.code().name}{reason}: {error.details()}", file=sys.stderr)
            return 1
    return 0
