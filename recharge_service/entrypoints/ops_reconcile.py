"""The operator CLI's reconciliation commands (``python -m recharge_service.ops reconcile ...``):

    reconcile run DATE [--merchant-id ID]                 reconcile a business day now, print the runs
    reconcile show DATE [--merchant-id ID] [--category C ...] [--csv]
                                                          the stored runs and their items (a table,
                                                          or CSV of the items for finance)

Each item names its order: ``timeline ORDER_NO`` shows that order's whole history.
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Iterator
from typing import Any

import grpc

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc

PAGE_SIZE = 500
ITEM_FIELDS = (
    "date", "merchant_id", "order_no", "category", "wechat_fen", "ours_fen", "card_fen",
    "wechat", "ours", "card", "detail",
)  # fmt: skip


def add_reconcile_commands(sub: Any) -> None:
    p = sub.add_parser(
        "reconcile",
        help="the daily three-way reconciliation (WeChat's bill, our orders, the card journal)",
        description="Run or show the reconciliation of one business day (YYYY-MM-DD, +08:00).",
    )
    inner = p.add_subparsers(dest="reconcile_command", required=True, metavar="ACTION")
    run = inner.add_parser("run", help="reconcile DATE now (replaces an earlier run of that day)")
    run.add_argument("date", metavar="DATE")
    run.add_argument("--merchant-id", default="", help="only this merchant (default: every merchant)")
    show = inner.add_parser("show", help="the stored runs of DATE and their items")
    show.add_argument("date", metavar="DATE")
    show.add_argument("--merchant-id", default="", help="only this merchant (default: every merchant)")
    show.add_argument("--category", action="append", default=[], metavar="C",
                      help="only this category (repeatable), e.g. PAID_NOT_SETTLED")  # fmt: skip
    show.add_argument("--csv", action="store_true", help="the items as CSV (every page), no tables")


def runs_table(runs: Any) -> str:
    # Imported here: ops_cli imports this module to register the commands.
    from recharge_service.entrypoints.ops_cli import table, when

    rows = [
        (r.date, r.merchant_id, r.status, r.differences, r.pending, r.bill_rows, r.orders, r.journal_entries,
         r.actor, when(r.finished_at), r.detail)
        for r in runs
    ]  # fmt: skip
    headers = ("DATE", "MERCHANT", "STATUS", "DIFFERENCES", "PENDING", "BILL_ROWS", "ORDERS", "JOURNAL",
               "BY", "FINISHED", "DETAIL")  # fmt: skip
    return table(headers, rows)


def items_table(items: list[recharge_pb2.ReconciliationItem]) -> str:
    from recharge_service.entrypoints.ops_cli import table

    rows = [
        (i.order_no, i.merchant_id, i.category, i.wechat_fen, i.ours_fen, i.card_fen, i.wechat, i.ours,
         i.card, i.detail)
        for i in items
    ]  # fmt: skip
    headers = ("ORDER_NO", "MERCHANT", "CATEGORY", "WECHAT_FEN", "OURS_FEN", "CARD_FEN", "WECHAT", "OURS",
               "CARD", "DETAIL")  # fmt: skip
    return table(headers, rows)


def _pages(
    ops: recharge_pb2_grpc.RechargeOpsStub, args: argparse.Namespace
) -> Iterator[recharge_pb2.GetReconciliationResponse]:
    token = ""
    while True:
        request = recharge_pb2.GetReconciliationRequest(
            date=args.date, merchant_id=args.merchant_id, categories=args.category,
            page=recharge_pb2.PageRequest(page_size=PAGE_SIZE, page_token=token),
        )  # fmt: skip
        page = ops.GetReconciliation(request, timeout=args.timeout)
        yield page
        token = page.next_page_token
        if not token:
            return


def items_csv(items: list[recharge_pb2.ReconciliationItem]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ITEM_FIELDS)
    for item in items:
        writer.writerow([getattr(item, name) for name in ITEM_FIELDS])
    return out.getvalue().rstrip("\n")


def reconcile(channel: grpc.Channel, args: argparse.Namespace) -> str:
    ops = recharge_pb2_grpc.RechargeOpsStub(channel)
    if args.reconcile_command == "run":
        request = recharge_pb2.RunReconciliationRequest(date=args.date, merchant_id=args.merchant_id)
        answer = ops.RunReconciliation(request, timeout=args.timeout)
        return runs_table(answer.runs) + f"\n\nshow the items: reconcile show {args.date}"
    runs: list[recharge_pb2.ReconciliationRun] = []
    items: list[recharge_pb2.ReconciliationItem] = []
    for page in _pages(ops, args):
        runs = list(page.runs)
        items += page.items
    if args.csv:
        return items_csv(items)
    if not runs:
        return f"no reconciliation of {args.date} yet: reconcile run {args.date}"
    listing = items_table(items) if items else "no differences, nothing pending"
    return f"{runs_table(runs)}\n\n{listing}\n\nan order's history: timeline ORDER_NO"
