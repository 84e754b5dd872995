"""Reconcile a business day from a script (after a chaos run, in CI): ask the recharge center to
run the three-way reconciliation of DATE and wait until no order of the day is pending.

    python -m scripts.reconcile --target 127.0.0.1:50051 --token-file var/ops.token 2026-11-30

The recharge center reads the other two sides itself (the card system and WeChat Pay it was started
with), so only its address is needed. Exit status: 0 no difference, 1 differences (printed, with
each item's order; ``python -m recharge_service.ops timeline ORDER`` shows one), 2 bad usage or a
run that stayed pending or FAILED.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.channels import ClientAuth, sync_channel
from rc_common.tls import TlsFiles


@dataclass(frozen=True)
class DayReport:
    runs: list[recharge_pb2.ReconciliationRun]
    #: The differences (PENDING left out), every page.
    items: list[recharge_pb2.ReconciliationItem]

    @property
    def differences(self) -> int:
        return sum(run.differences for run in self.runs)

    @property
    def settled(self) -> bool:
        """Every run COMPLETED with nothing pending."""
        return all(run.status == "COMPLETED" and run.pending == 0 for run in self.runs)


DIFFERENCE_CATEGORIES = [
    "PAID_NOT_SETTLED", "CREDITED_WITHOUT_PAYMENT", "REFUNDED_NOT_VOIDED", "CREDITED_AND_REFUNDED",
    "AMOUNT_MISMATCH", "BILL_WITHOUT_ORDER", "PAID_NOT_IN_BILL",
]  # fmt: skip


def reconcile_day(
    recharge_address: str,
    token: str,
    day: str,
    *,
    merchant_id: str = "",
    tls: TlsFiles | None = None,
    settle_within: float = 60.0,
    interval: float = 1.0,
    timeout: float = 120.0,
) -> DayReport:
    """Run the reconciliation of ``day`` (YYYY-MM-DD, +08:00), re-running every ``interval``
    seconds while an order is pending or a side could not be read, for up to ``settle_within``
    seconds; then the runs and every difference. Raises grpc.RpcError when the center refuses."""
    with sync_channel(recharge_address, ClientAuth(tls, token)) as channel:
        ops = recharge_pb2_grpc.RechargeOpsStub(channel)
        deadline = time.monotonic() + settle_within
        while True:
            request = recharge_pb2.RunReconciliationRequest(date=day, merchant_id=merchant_id)
            runs = list(ops.RunReconciliation(request, timeout=timeout).runs)
            report = DayReport(runs, [])
            if report.settled or time.monotonic() >= deadline:
                break
            time.sleep(interval)
        items: list[recharge_pb2.ReconciliationItem] = []
        after = ""
        while True:
            page = ops.GetReconciliation(
                recharge_pb2.GetReconciliationRequest(
                    date=day, merchant_id=merchant_id, categories=DIFFERENCE_CATEGORIES,
                    page=recharge_pb2.PageRequest(page_size=500, page_token=after),
                ),
                timeout=timeout,
            )  # fmt: skip
            items += page.items
            after = page.next_page_token
            if not after:
                return DayReport(runs, items)


def main(argv: Sequence[str] | None = None) -> int:
    top = argparse.ArgumentParser(prog="python -m scripts.reconcile", description=__doc__.split("\n\n")[0])
    top.add_argument("date", metavar="DATE", help="the business day, YYYY-MM-DD (+08:00)")
    top.add_argument("--target", default="127.0.0.1:50051", help="the recharge center (default: %(default)s)")
    top.add_argument("--token-file", default="", help="operator token file (else $RC_OPS_TOKEN)")
    top.add_argument("--tls-dir", default="", help="ca.crt, tls.crt, tls.key for a server with TLS")
    top.add_argument("--merchant-id", default="", help="only this merchant (default: every merchant)")
    top.add_argument("--settle-within", type=float, default=60.0, help="seconds to wait for pending orders")
    args = top.parse_args(argv)
    auth = ClientAuth.from_options(args.tls_dir, args.afterfile)
    report = reconcile_day(
        args.target, auth.token, args.date, merchant_id=args.merchant_id, tls=auth.tls,
        settle_within=args.settle_within,
    )  # fmt: skip
    for run in report.runs:
        counts = f"differences={run.differences} pending={run.pending}"
        print(f"{run.date} {run.merchant_id}: {run.status} {counts} {run.detail}".rstrip())
    for item in report.items:
        views = f"wechat={item.wechat!r} ours={item.ours!r} card={item.card!r}"
        print(f"  {item.order_no} {item.category}: {views}")
    if not report.settled:
        return 2
    return 1 if report.differences else 0


if __name__ == "__main__":
    sys.exit(main())
