"""Card system bench: ConfirmRecharge per second against a real ``python -m card_service``.

Starts the card system on 127.0.0.1:0 with a fresh SQLite file, opens cards, pre-recharges
``--orders`` orders spread over the cards, then confirms them all with ``--concurrency`` callers
and prints confirms per second. It checks the ledger afterwards (every card's balance equals
what was confirmed on it), so a fast but wrong run does not count.

    .venv/bin/python -m scripts.bench.card [--orders 2000] [--cards 64] [--concurrency 32] [--db URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path

import grpc

from protos.card.v1 import card_pb2, card_pb2_grpc
from scripts.stack import ServiceProcess

PAY_FEN = 10_000


async def run_all(calls: Sequence[Callable[[], Awaitable[object]]], concurrency: int) -> float:
    """Runs the calls with ``concurrency`` workers; returns the elapsed seconds."""
    queue = iter(calls)

    async def worker() -> None:
        for call in queue:
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def bench(address: str, orders: int, card_count: int, concurrency: int) -> dict[str, float]:
    async with grpc.aio.insecure_channel(address) as channel:
        system = card_pb2_grpc.CardSystemStub(channel)
        admin = card_pb2_grpc.CardAdminStub(channel)
        cards = [f"62{index:014d}" for index in range(card_count)]
        for card_no in cards:
            await admin.OpenCard(card_pb2.OpenCardRequest(card_no=card_no), timeout=10)
        owner = {f"B{index:08d}": cards[index % card_count] for index in range(orders)}
        pre_s = await run_all(
            [
                partial(
                    system.PreRecharge,
                    card_pb2.PreRechargeRequest(order_no=order_no, card_no=card_no, pay_amount_fen=PAY_FEN),
                    timeout=30,
                )
                for order_no, card_no in owner.items()
            ],
            concurrency,
        )
        confirm_s = await run_all(
            [
                partial(
                    system.ConfirmRecharge, card_pb2.ConfirmRechargeRequest(order_no=order_no), timeout=30
                )
                for order_no in owner
            ],
            concurrency,
        )
        expected = Counter(owner.values())
        for card_no in cards:
            card = await system.GetCard(card_pb2.GetCardRequest(card_no=card_no), timeout=10)
            assert card.balance_fen == expected[card_no] * PAY_FEN, (card_no, card.balance_fen)
            assert card.pending_recharge_fen == 0, card_no
    return {"pre_recharge_per_s": orders / pre_s, "confirm_per_s": orders / confirm_s}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.card",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, default=2000, help="pre-recharges to confirm")
    parser.add_argument("--cards", type=int, default=64, help="cards the orders are spread over")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent callers")
    parser.add_argument("--db", default="", help="an EMPTY database URL (default: a fresh SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-card-") as workdir:
        service = ServiceProcess(
            "card",
            "card_service",
            ["--db", args.db or f"sqlite+aiosqlite:///{workdir}/card.db"],
            Path(workdir) / "card.log",
        )
        try:
            service.start("127.0.0.1:0")
            figures = asyncio.run(bench(service.address, args.orders, args.cards, args.concurrency))
        finally:
            service.stop()
    print(
        f"card_service: {args.orders} orders over {args.cards} cards, concurrency {args.concurrency}: "
        f"PreRecharge {figures['pre_recharge_per_s']:.0f}/s, "
        f"ConfirmRecharge {figures['confirm_per_s']:.0f}/s"
    )


if __name__ == "__main__":
    main()
