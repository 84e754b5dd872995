"""Card system bench: ConfirmRecharge per second against a real ``python -m card_service``.

Starts the card system on 127.0.0.1:0 with a fresh SQLite file, opens cards (dealt in turn to the
bench's merchants, ``scripts.merchants.BENCH_MERCHANTS``, each with its bonus rule), pre-recharges
``--orders`` orders spread over the cards (each naming its card's merchant), then confirms them all
with ``--concurrency`` callers and prints confirms per second. It checks the ledger afterwards
(every card's balance equals what was confirmed on it, bonus included), so a fast but wrong run
does not count.

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

from protos.card.v1 import card_pb2, card_pb2_grpc
from rc_common.channels import ClientAuth, aio_channel
from scripts.merchants import BENCH_MERCHANTS
from scripts.stack import AUTH_KEY, ServiceProcess, write_credentials

PAY_FEN = 20_000  # ¥200: the bench merchants' ¥20 bonus tier, so the bonus path is measured too


async def run_all(calls: Sequence[Callable[[], Awaitable[object]]], concurrency: int) -> float:
    """Runs the calls with ``concurrency`` workers; returns the elapsed seconds."""
    queue = iter(calls)

    async def worker() -> None:
        for call in queue:
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def bench(
    address: str, orders: int, card_count: int, concurrency: int, auth: ClientAuth
) -> dict[str, float]:
    async with aio_channel(address, auth) as channel:
        system = card_pb2_grpc.CardSystemStub(channel)
        admin = card_pb2_grpc.CardAdminStub(channel)
        credit_fen = {}
        for merchant in BENCH_MERCHANTS:
            await admin.SetRechargeRule(
                card_pb2.SetRechargeRuleRequest(
                    merchant_id=merchant.merchant_id,
                    tiers=[card_pb2.BonusTier(min_pay_fen=p, bonus_fen=b) for p, b in merchant.rule],
                ),
                timeout=10,
            )
            bonus = max((b for p, b in merchant.rule if p <= PAY_FEN), default=0)
            credit_fen[merchant.merchant_id] = PAY_FEN + bonus
        # card number -> its merchant
        cards = {
            f"62{index:014d}": BENCH_MERCHANTS[index % len(BENCH_MERCHANTS)].merchant_id
            for index in range(max(card_count, len(BENCH_MERCHANTS)))
        }
        for card_no, merchant_id in cards.items():
            await admin.OpenCard(
                card_pb2.OpenCardRequest(card_no=card_no, merchant_id=merchant_id), timeout=10
            )
        numbers = list(cards)
        owner = {f"B{index:08d}": numbers[index % len(numbers)] for index in range(orders)}
        pre_s = await run_all(
            [
                partial(
                    system.PreRecharge,
                    card_pb2.PreRechargeRequest(
                        merchant_id=cards[card_no], order_no=order_no, card_no=card_no, pay_amount_fen=PAY_FEN
                    ),
                    timeout=30,
                )
                for order_no, card_no in owner.items()
            ],
            concurrency,
        )
        # As the recharge center confirms: by order number alone (order numbers are global).
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
        for card_no, merchant_id in cards.items():
            card = await system.GetCard(
                card_pb2.GetCardRequest(card_no=card_no, merchant_id=merchant_id), timeout=10
            )
            want = expected[card_no] * credit_fen[merchant_id]
            assert card.balance_fen == want, (card_no, card.balance_fen, want)
            assert card.pending_recharge_fen == 0, card_no
    return {"pre_recharge_per_s": orders / pre_s, "confirm_per_s": orders / confirm_s}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.card",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, default=2000, help="pre-recharges to confirm")
    parser.add_argument(
        "--cards",
        type=int,
        default=64,
        help="cards the orders are spread over (dealt to the merchants in turn)",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent callers")
    parser.add_argument("--db", default="", help="an EMPTY database URL (default: a fresh SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-card-") as workdir:
        auth = write_credentials(Path(workdir))  # CardAdmin needs an operator token
        service = ServiceProcess(
            "card",
            "card_service",
            [
                *("--db", args.db or f"sqlite+aiosqlite:///{workdir}/card.db"),
                *("--auth-key-file", str(Path(workdir) / AUTH_KEY)),
            ],
            Path(workdir) / "card.log",
        )
        try:
            service.migrate()
            service.start("127.0.0.1:0")
            figures = asyncio.run(bench(service.address, args.orders, args.cards, args.concurrency, auth))
        finally:
            service.stop()
    print(
        f"card_service: {args.orders} orders over {args.cards} cards, concurrency {args.concurrency}: "
        f"PreRecharge {figures['pre_recharge_per_s']:.0f}/s, "
        f"ConfirmRecharge {figures['confirm_per_s']:.0f}/s"
    )


if __name__ == "__main__":
    main()
