"""The operator CLI's four-eyes commands (``python -m recharge_service.ops ...``):

    approvals [--status S ...] [--merchant-id ID] [--limit N]
                                    approvals, newest request first (default: the PENDING ones)
    approve APPROVAL_ID --reason TEXT
                                    approve: the action runs now, as you (approver role; not the
                                    operator who asked)
    reject APPROVAL_ID --reason TEXT
                                    reject: nothing runs

A refund above ``--four-eyes-refund-above`` asked with ``resolve … --action refund`` answers
APPROVAL_REQUIRED and its approval id; a second operator decides it here.
"""

from __future__ import annotations

import argparse
from typing import Any

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from recharge_service.domain.numbers import money

STATUSES = ("PENDING", "APPROVED", "REJECTED", "EXPIRED")
PAGE_SIZE = 200


def approval_status(text: str) -> str:
    name = text.strip().upper()
    if name not in STATUSES:
        raise argparse.ArgumentTypeError(f"unknown approval status {text!r} (one of {', '.join(STATUSES)})")
    return name


def add_approval_commands(sub: Any) -> None:
    p = sub.add_parser(
        "approvals",
        help="four eyes: approvals, newest first (default: pending)",
        description="Refunds above the four-eyes threshold wait here for a second operator.",
    )
    p.add_argument(
        "--status", type=approval_status, action="append", metavar="S",
        help=f"only this status (repeatable): {', '.join(STATUSES)} (default: PENDING)",
    )  # fmt: skip
    p.add_argument("--merchant-id", default="", help="only this merchant's (default: everyone's)")
    p.add_argument("--limit", type=int, default=200, help="at most this many rows (default: %(default)s)")
    for command, does in (("approve", "the action then runs, as you"), ("reject", "nothing runs")):
        p = sub.add_parser(
            command,
            help=f"{command} a pending approval ({does})",
            description=f"{command.capitalize()} APPROVAL_ID ({does}). Needs the approver role, and "
            "somebody other than the operator who asked.",
        )
        p.add_argument("approval_id", metavar="APPROVAL_ID")
        p.add_argument("--reason", required=True, help="why (kept with the approval and in the timeline)")


def show_approvals(ops: recharge_pb2_grpc.RechargeOpsStub, args: argparse.Namespace) -> str:
    from recharge_service.entrypoints.ops_cli import table, when  # ops_cli imports this module

    rows: list[tuple[object, ...]] = []
    token = ""
    while len(rows) < args.limit:
        page = ops.ListApprovals(
            recharge_pb2.ListApprovalsRequest(
                statuses=args.status or [],
                merchant_id=args.merchant_id,
                page=recharge_pb2.PageRequest(
                    page_size=min(args.limit - len(rows), PAGE_SIZE), page_token=token
                ),
            ),
            timeout=args.timeout,
        )
        rows += [
            (a.approval_id, a.order_no, a.merchant_id, action_name(a.action), money(a.amount_fen), a.status,
             a.requested_by, when(a.requested_at), a.decided_by or "-", a.outcome or a.request_reason)
            for a in page.approvals
        ]  # fmt: skip
        token = page.next_page_token
        if not token:
            break
    headers = ("APPROVAL_ID", "ORDER_NO", "MERCHANT", "ACTION", "AMOUNT", "STATUS", "ASKED BY",
               "ASKED AT (UTC+8)", "DECIDED BY", "OUTCOME | REASON")  # fmt: skip
    more = " (more: raise --limit)" if token else ""
    return table(headers, rows) + f"\n{len(rows)} approvals{more}"


def decide(ops: recharge_pb2_grpc.RechargeOpsStub, args: argparse.Namespace) -> str:
    from recharge_service.entrypoints.ops_cli import status_name

    reply = ops.DecideApproval(
        recharge_pb2.DecideApprovalRequest(
            approval_id=args.approval_id, approve=args.command == "approve", reason=args.reason
        ),
        timeout=args.timeout,
    )
    a = reply.approval
    lines = [
        f"approval {a.approval_id}: {a.status} by {a.decided_by}",
        f"{reply.order.order_no}: {status_name(reply.order.status)}",
    ]
    return "\n".join([*lines, f"outcome: {a.outcome}"] if a.outcome else lines)


def approval_line(approval: recharge_pb2.Approval) -> str:
    """How ``resolve`` shows an action that waits for a second operator."""
    return (
        f"waiting for a second operator: approval {approval.approval_id} ({action_name(approval.action)} "
        f"{money(approval.amount_fen)}, asked by {approval.requested_by}); an approver runs "
        f"`approve {approval.approval_id} --reason …` or `reject …`"
    )


def action_name(value: int) -> str:
    return str(recharge_pb2.ResolveAction.Name(value)).removeprefix("RESOLVE_ACTION_")  # type: ignore[arg-type]
