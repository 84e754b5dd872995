"""Load for the bench: top-ups end to end (create -> pay -> notify -> CREDITED), closed or open loop.

A top-up: ``CreateRechargeOrder`` (latency recorded), ``PayerSimulator.Pay``, then
``GetRechargeOrder`` until CREDITED; pay->credited is measured from the start of Pay to the poll
that sees CREDITED. Polling adapts so it adds only a few cheap reads per top-up (reported as
``polls_per_topup``, about three): the first poll comes as long after Pay as this order's own
CreateRechargeOrder took (both queue behind the same work, so that tracks the load with no state),
later polls when the wait has grown by 25 % (at least 3 ms apart): a reading is at most ~25 % late
— read pay->credited latencies as upper bounds.

Every request names its merchant: the cards (:class:`BenchCard`) belong to merchants, and the
top-ups go round the cards, so with the cards interleaved the load alternates between merchants
(``completed_by_merchant`` in the summary shows the split).

Several recharge-center replicas are one target, ``ipv4:HOST:P1,HOST:P2`` (:func:`replicas_target`),
reached through one channel with client-side ``round_robin`` (each call goes to the next replica),
as a merchant's callers would reach them.

The same code drives the real services and the bare chain (``scripts/bench/bare.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import grpc

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc

CREDIT_TIMEOUT_S = 30.0
#: The payer of every bench top-up (the customer notices go to it; the bench counts them by it).
OPENID = "o-bench"


def replicas_target(addresses: Sequence[str]) -> str:
    """One gRPC target for ``addresses`` (``host:port`` each): the address itself for one, else the
    ``ipv4:`` list that a channel with ``round_robin`` spreads calls over."""
    if not addresses:
        raise ValueError("no address")
    return addresses[0] if len(addresses) == 1 else "ipv4:" + ",".join(addresses)


def channel_options(target: str) -> list[tuple[str, Any]]:
    """Options of the bench's channels; ``round_robin`` over a target that lists several addresses."""
    options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    if "," in target:
        options.append(("grpc.lb_policy_name", "round_robin"))
    return options


class BenchCard(NamedTuple):
    """A card the bench tops up, and the merchant whose card program issued it."""

    merchant_id: str
    card_no: str


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class LoadResult:
    label: str
    concurrency: int
    offered_rate: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    finished: float = 0.0
    completed: int = 0
    failed: int = 0
    polls: int = 0
    create_ms: list[float] = field(default_factory=list)
    credit_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: CPU each server process spent per completed top-up (filled by the bench).
    cpu_ms_per_topup: dict[str, float] = field(default_factory=dict)
    #: Seconds the servers stayed busy after the last top-up was credited (deferred work).
    drain_s: float = 0.0
    #: CPU-seconds per second of each process (and of its event-loop thread, ``name:loop``).
    cpu_busy: dict[str, float] = field(default_factory=dict)
    #: Per service: database counters' growth and per-top-up figures (scripts/bench/db.py).
    db: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Completed top-ups per merchant.
    by_merchant: Counter[str] = field(default_factory=Counter)

    @property
    def elapsed_s(self) -> float:
        return max(1e-9, (self.finished or time.perf_counter()) - self.started)

    @property
    def tps(self) -> float:
        return self.completed / self.elapsed_s

    @property
    def sustained_tps(self) -> float:
        """Top-ups per second counting the time the servers needed to finish the deferred work."""
        return self.completed / (self.elapsed_s + self.drain_s)

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "concurrency": self.concurrency,
            "offered_rate_per_s": round(self.offered_rate, 1),
            "completed": self.completed,
            "completed_by_merchant": dict(sorted(self.by_merchant.items())),
            "failed": self.failed,
            "elapsed_s": round(self.elapsed_s, 3),
            "topups_per_s": round(self.tps, 1),
            "drain_s": round(self.drain_s, 2),
            "sustained_topups_per_s": round(self.sustained_tps, 1),
            "polls_per_topup": round(self.polls / max(1, self.completed), 2),
            "create_ms": {f"p{p}": round(percentile(self.create_ms, p), 2) for p in (50, 95, 99)},
            "pay_to_credited_ms": {f"p{p}": round(percentile(self.credit_ms, p), 2) for p in (50, 95, 99)},
            "cpu_ms_per_topup": self.cpu_ms_per_topup,
            "cpu_busy": self.cpu_busy,
            "db": self.db,
            "errors": self.errors[:10],
        }


class TopUps:
    """Runs top-ups against one recharge center (``recharge``: one address, or several replicas as
    :func:`replicas_target` names them) + payer, going round ``cards`` (each top-up names its card's
    merchant)."""

    def __init__(
        self, recharge: str, wechat: str, cards: Sequence[BenchCard], amount_fen: int, prefix: str
    ) -> None:
        self._recharge_channel = grpc.aio.insecure_channel(recharge, options=channel_options(recharge))
        self._wechat_channel = grpc.aio.insecure_channel(wechat, options=channel_options(wechat))
        self._center = recharge_pb2_grpc.RechargeCenterStub(self._recharge_channel)
        self._payer = wechatpay_pb2_grpc.PayerSimulatorStub(self._wechat_channel)
        self._cards = list(cards)
        self._amount = amount_fen
        self._prefix = prefix
        self._counter = 0

    @property
    def merchants(self) -> list[str]:
        """The merchants whose cards are topped up."""
        return sorted({card.merchant_id for card in self._cards})

    async def close(self) -> None:
        await self._recharge_channel.close()
        await self._wechat_channel.close()

    def _next(self) -> tuple[str, BenchCard]:
        self._counter += 1
        return f"{self._prefix}-{self._counter:07d}", self._cards[self._counter % len(self._cards)]

    async def create_and_pay(self, result: LoadResult, *, wait: bool = True) -> str | None:
        """One top-up; with ``wait`` until CREDITED. Returns the order number (None on failure)."""
        key, card = self._next()
        try:
            t0 = time.perf_counter()
            order = await self._center.CreateRechargeOrder(
                recharge_pb2.CreateRechargeOrderRequest(
                    merchant_id=card.merchant_id,
                    card_no=card.card_no,
                    pay_amount_fen=self._amount,
                    channel=recharge_pb2.CHANNEL_POS,
                    idempotency_key=key,
                    payer_openid=OPENID,
                ),
                timeout=30,
            )
            t1 = time.perf_counter()
            result.create_ms.append((t1 - t0) * 1000)
            await self._payer.Pay(wechatpay_pb2.PayRequest(out_trade_no=order.order_no), timeout=30)
            if wait and not await self._until_credited(card.merchant_id, order.order_no, t1, t1 - t0, result):
                return None
        except grpc.aio.AioRpcError as error:
            result.failed += 1
            result.errors.append(f"{error.code().name}: {error.details()}")
            return None
        if wait:
            result.completed += 1
            result.by_merchant[card.merchant_id] += 1
            result.finished = time.perf_counter()
        return str(order.order_no)

    async def _until_credited(
        self, merchant_id: str, order_no: str, paid_at: float, first_wait_s: float, result: LoadResult
    ) -> bool:
        request = recharge_pb2.GetRechargeOrderRequest(merchant_id=merchant_id, order_no=order_no)
        await asyncio.sleep(max(0.0, first_wait_s - (time.perf_counter() - paid_at)))
        while time.perf_counter() - paid_at < CREDIT_TIMEOUT_S:
            order = await self._center.GetRechargeOrder(request, timeout=30)
            result.polls += 1
            if order.status == recharge_pb2.ORDER_STATUS_CREDITED:
                latency = time.perf_counter() - paid_at
                result.credit_ms.append(latency * 1000)
                return True
            await asyncio.sleep(max(0.003, 0.25 * (time.perf_counter() - paid_at)))
        result.failed += 1
        result.errors.append(f"{order_no}: not CREDITED within {CREDIT_TIMEOUT_S}s")
        return False


async def closed_loop(
    topups: TopUps, concurrency: int, *, duration_s: float = 0.0, orders: int = 0, label: str = ""
) -> LoadResult:
    """``concurrency`` customers, each starting the next top-up when the last is credited."""
    result = LoadResult(label, concurrency)
    stop_at = time.perf_counter() + duration_s if duration_s else float("inf")
    budget = [orders or 10**12]

    async def customer() -> None:
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            await topups.create_and_pay(result)

    await asyncio.gather(*(customer() for _ in range(concurrency)))
    result.finished = result.finished or time.perf_counter()
    return result


async def open_loop(topups: TopUps, rate_per_s: float, duration_s: float, *, label: str = "") -> LoadResult:
    """Arrivals at a fixed rate regardless of answers (the load a real front end offers)."""
    result = LoadResult(label, 0, offered_rate=rate_per_s)
    tasks: list[asyncio.Task[str | None]] = []
    count = max(1, int(rate_per_s * duration_s))
    for i in range(count):
        delay = result.started + i / rate_per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(topups.create_and_pay(result)))
    await asyncio.gather(*tasks)
    return result
