"""One stack for the reconciliation scenarios: the three real services with a 1 s hold and a fast
sentinel (so a day's orders settle within seconds), and clients acting for the partner-mode
merchant; helpers that run and read a reconciliation of today (+08:00)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from protos.recharge.v1 import recharge_pb2
from rc_common.business_day import business_date
from rc_common.clock import utc_now
from scripts.merchants import DemoMerchant, direct_merchants_flag
from scripts.stack import Stack, build_stack, start_stack
from tests.e2e.merchants import PARTNER, configured, open_all
from tests.e2e.recharge_flow.conftest import connected
from tests.e2e.sentinel.conftest import Ops
from tests.waiting import eventually


@pytest.fixture(scope="package")
def reconcile_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("reconcile")
    merchants = configured()
    stack = build_stack(
        workdir,
        recharge_args=[
            *("--hold", "1", "--sentinel-interval", "0.5", "--lease", "10"),
            *("--confirm-attempts", "2", "--confirm-backoff", "0.05", "--confirm-deadline", "1"),
            *("--remote-backoff", "0.05", "--remote-deadline", "2", "--reconcile-deadline", "10"),
            # The daily job is scheduled (04:00 +08:00: it does not fire during the tests).
            *("--reconcile-enabled", "true", "--reconcile-at", "04:00"),
            *("--outbox-interval", "0.2", "--outbox-backoff", "0.1", "--outbox-backoff-max", "0.5"),
        ],
        wechat_args=[
            *("--notify-schedule", "0.2,0.3,0.5,1", "--refund-delay", "0.3", "--idle-poll", "0.2"),
            *direct_merchants_flag(merchants),
        ],
    )
    running = start_stack(stack)
    try:
        open_all(running, merchants)
        yield running
    finally:
        running.stop()


def today() -> str:
    return business_date(utc_now()).isoformat()


@dataclass
class Reconciling(Ops):
    """The sentinel scenarios' clients (faults, the CLI) plus reconciliation helpers."""

    async def reconcile(self, day: str = "") -> recharge_pb2.ReconciliationRun:
        request = recharge_pb2.RunReconciliationRequest(date=day or today(), merchant_id=self.merchant_id)
        answer = await self.ops.RunReconciliation(request, timeout=30)
        (run,) = answer.runs
        return run

    async def settled_run(self, within: float = 30.0) -> recharge_pb2.ReconciliationRun:
        """Re-run until no order of the day is pending (each finished and past the 1 s hold)."""

        async def settled() -> recharge_pb2.ReconciliationRun | None:
            run = await self.reconcile()
            return run if run.status == "COMPLETED" and run.pending == 0 else None

        return await eventually(settled, within=within, interval=0.5, what="a run with nothing pending")

    async def items(self, day: str = "", *categories: str) -> list[recharge_pb2.ReconciliationItem]:
        found: list[recharge_pb2.ReconciliationItem] = []
        token = ""
        while True:
            request = recharge_pb2.GetReconciliationRequest(
                date=day or today(),
                merchant_id=self.merchant_id,
                categories=list(categories),
                page=recharge_pb2.PageRequest(page_size=2, page_token=token),
            )
            page = await self.ops.GetReconciliation(request, timeout=10)
            found += page.items
            token = page.next_page_token
            if not token:
                return found


@pytest.fixture
def merchant() -> DemoMerchant:
    return PARTNER


@pytest.fixture
async def recon(reconcile_stack: Stack, merchant: DemoMerchant) -> AsyncIterator[Reconciling]:
    async with connected(Reconciling, reconcile_stack, merchant, {}) as built:
        yield built
