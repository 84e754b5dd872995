"""The sentinel's rate: resolve a backlog of N orders stuck in CREDIT_UNKNOWN.

Builds the backlog through the public flow: ConfirmRecharge faulted UNAVAILABLE on every call, N
top-ups created and paid (spread over the bench's merchants, as the load is), until each is
CREDIT_UNKNOWN (the notify path gave up); orders are counted per merchant (listing is per
merchant) and summed. Then the fault is
cleared and ``RechargeOps.RunSentinel(ignore_hold=true)`` is called until none is left; the time
from the first call to the last resolved order is the figure. Skipped (with the reason) when
RunSentinel is UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import grpc

from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from scripts.bench.load import LoadResult, TopUps
from scripts.chaos.rpc import Stubs

CONFIRM = "/card.v1.CardSystem/ConfirmRecharge"


async def sentinel_available(stubs: Stubs) -> str:
    """Empty when RunSentinel answers; else why not."""
    try:
        await stubs.ops.RunSentinel(recharge_pb2.RunSentinelRequest(ignore_hold=False), timeout=60)
    except grpc.aio.AioRpcError as error:
        return f"RunSentinel answered {error.code().name}: {error.details()}"
    return ""


async def count_in(
    stubs: Stubs, merchants: Sequence[str], statuses: Sequence[recharge_pb2.OrderStatus.ValueType]
) -> dict[str, int]:
    """Per merchant: how many of its orders are in ``statuses``."""
    counts = {}
    for merchant_id in merchants:
        total, token = 0, ""
        while True:
            page = await stubs.center.ListRechargeOrders(
                recharge_pb2.ListRechargeOrdersRequest(
                    merchant_id=merchant_id,
                    filter=recharge_pb2.OrderFilter(statuses=statuses),
                    page=recharge_pb2.PageRequest(page_size=1000, page_token=token),
                ),
                timeout=60,
            )
            total += len(page.orders)
            token = page.next_page_token
            if not token:
                break
        counts[merchant_id] = total
    return counts


STUCK = (recharge_pb2.ORDER_STATUS_CREDIT_UNKNOWN,)
IN_FLIGHT = (
    recharge_pb2.ORDER_STATUS_CREATED,
    recharge_pb2.ORDER_STATUS_AWAITING_PAYMENT,
    recharge_pb2.ORDER_STATUS_PAID,
)


async def not_credited(stubs: Stubs, merchants: Sequence[str]) -> dict[str, int]:
    """Orders of ``merchants`` in any state but CREDITED, by state name (none in a clean run: every
    bench top-up is paid and waited for, and the backlog resolved)."""
    found = {}
    for status in recharge_pb2.OrderStatus.values():
        if status in (recharge_pb2.ORDER_STATUS_UNSPECIFIED, recharge_pb2.ORDER_STATUS_CREDITED):
            continue
        count = sum((await count_in(stubs, merchants, (status,))).values())
        if count:
            found[recharge_pb2.OrderStatus.Name(status)] = count
    return found


async def build_backlog(stubs: Stubs, topups: TopUps, n: int, concurrency: int, say: Any) -> dict[str, int]:
    """The orders left CREDIT_UNKNOWN, per merchant."""
    rule = faults_pb2.FaultRule(method=CONFIRM, kind=faults_pb2.FAULT_KIND_UNAVAILABLE, probability=1.0)
    await stubs.card_faults.SetFaults(faults_pb2.FaultPlan(seed=1, rules=[rule]), timeout=10)
    result = LoadResult("backlog", concurrency)
    left = [n]

    async def customer() -> None:
        while left[0] > 0:
            left[0] -= 1
            await topups.create_and_pay(result, wait=False)

    async def ticker() -> None:
        while True:
            await asyncio.sleep(10)
            say(f"backlog: {n - left[0]}/{n} top-ups created and paid, {result.failed} failed")

    ticking = asyncio.ensure_future(ticker())
    try:
        await asyncio.gather(*(customer() for _ in range(concurrency)))
    finally:
        ticking.cancel()
    deadline = time.monotonic() + 600
    stuck: dict[str, int] = {}
    while time.monotonic() < deadline:
        stuck = await count_in(stubs, topups.merchants, STUCK)
        flying = sum((await count_in(stubs, topups.merchants, IN_FLIGHT)).values())
        say(f"backlog: CREDIT_UNKNOWN {stuck}, {flying} still in flight")
        if flying == 0:
            break
        await asyncio.sleep(1.0)
    await stubs.card_faults.ClearFaults(faults_pb2.ClearFaultsRequest(), timeout=10)
    return stuck


async def resolve_backlog(
    stubs: Stubs, stuck_by_merchant: dict[str, int], timeout_s: float, say: Any
) -> dict[str, Any]:
    started = time.perf_counter()
    runs, reports = 0, []
    merchants = sorted(stuck_by_merchant)
    stuck = left = sum(stuck_by_merchant.values())
    left_by_merchant = dict(stuck_by_merchant)
    while left and time.perf_counter() - started < timeout_s:
        report = await stubs.ops.RunSentinel(
            recharge_pb2.RunSentinelRequest(ignore_hold=True), timeout=timeout_s
        )
        runs += 1
        reports.append(
            {
                "examined": report.examined,
                "credited": report.credited,
                "still_unknown": report.still_unknown,
                "duration_ms": report.duration_ms,
            }
        )
        left_by_merchant = await count_in(stubs, merchants, STUCK)
        left = sum(left_by_merchant.values())
        say(
            f"sentinel run {runs}: examined {report.examined}, credited {report.credited}, "
            f"{left} left {left_by_merchant}"
        )
    elapsed = time.perf_counter() - started
    resolved = stuck - left
    return {
        "orders": stuck,
        "orders_by_merchant": stuck_by_merchant,
        "resolved": resolved,
        "left": left,
        "left_by_merchant": left_by_merchant,
        "seconds": round(elapsed, 2),
        "per_s": round(resolved / elapsed, 1) if elapsed else 0.0,
        "runs": runs,
        "reports": reports[:20],
    }
