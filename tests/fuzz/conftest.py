"""The fuzz suite's stack (the three real services, as the e2e suites start them, with both demo
merchants open), what it knows (cards, orders), and the budget of a run.

Budget: ``FUZZ_EXAMPLES`` examples per strategy; the default is the short run of ``make test``;
``make fuzz`` runs a long one. Seed: ``FUZZ_SEED`` (random when unset; printed in the header of
``pytest tests/fuzz``, in the captured output and in every failure). The same seed and example
count draw the same requests; the order numbers the stack hands out differ from run to run, so a
failure is replayed by the seed plus the request it prints. ``FUZZ_DEADLINE_S``: how long a call
may take before it counts as a hang (20 s); ``FUZZ_DB=postgresql``: the stack on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from protos.card.v1 import card_pb2, card_pb2_grpc
from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.channels import aio_channel
from rc_common.clock import CHINA
from scripts.merchants import direct_merchants_flag
from scripts.stack import Stack, build_stack, start_stack
from tests.e2e.merchants import MERCHANTS, configured, open_all
from tests.fuzz.calls import Caller

#: Examples per strategy in the default (short) run.
SHORT_EXAMPLES = 80


_SEED = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**32))


def pytest_report_header(config: pytest.Config) -> str:
    return f"fuzz seed: {_SEED} (rerun with FUZZ_SEED={_SEED})"


@dataclass(frozen=True)
class Budget:
    examples: int
    seed: int
    #: Seconds every call must be answered within (DEADLINE_EXCEEDED = a hang).
    deadline_s: float = float(os.environ.get("FUZZ_DEADLINE_S", "20"))


@pytest.fixture(scope="session")
def budget() -> Budget:
    examples = int(os.environ.get("FUZZ_EXAMPLES") or SHORT_EXAMPLES)
    print(f"\nfuzz: seed {_SEED}, {examples} examples per strategy")
    return Budget(examples, _SEED)


@dataclass
class Known:
    """What the running stack holds, by request field name (values a valid request would use),
    and every pre-recharge order number sent to the card system (for the pending check)."""

    values: dict[str, list[Any]]
    cards: dict[str, str]  # card_no -> merchant_id
    sent_order_nos: set[str] = field(default_factory=set)


@pytest.fixture(scope="session")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack on SQLite, or on PostgreSQL with ``FUZZ_DB=postgresql`` (where column lengths
    are enforced: ``make fuzz`` runs both)."""
    workdir: Path = tmp_path_factory.mktemp("fuzz")
    merchants = configured()
    with contextlib.ExitStack() as cleanup:
        urls = None
        if os.environ.get("FUZZ_DB", "sqlite") == "postgresql":
            from scripts.chaos.services import create_databases
            from tests.postgres import start_postgres

            server = start_postgres()
            cleanup.callback(server.stop)
            urls = create_databases(server, prefix="fuzz")
        stack = build_stack(
            workdir,
            recharge_args=["--remote-deadline", "2", "--outbox-interval", "0.2"],
            wechat_args=["--refund-delay", "0.3", *direct_merchants_flag(merchants)],
            db_url_for=urls,
        )
        running = start_stack(stack)
        cleanup.callback(running.stop)
        open_all(running, merchants)
        yield running


async def _seed_entities(stack: Stack) -> Known:
    cards: dict[str, str] = {}
    orders: list[str] = []
    async with (
        aio_channel(stack.card.address, stack.client_auth()) as card,
        aio_channel(stack.recharge.address, stack.client_auth()) as recharge,
        aio_channel(stack.wechat.address, stack.client_auth()) as wechat,
    ):
        payer = wechatpay_pb2_grpc.PayerSimulatorStub(wechat)
        admin = card_pb2_grpc.CardAdminStub(card)
        center = recharge_pb2_grpc.RechargeCenterStub(recharge)
        for merchant in MERCHANTS:
            for _ in range(2):
                card_no = "67" + f"{uuid.uuid4().int % 10**14:014d}"
                request = card_pb2.OpenCardRequest(
                    card_no=card_no, holder_name="Fuzz", merchant_id=merchant.merchant_id
                )
                await admin.OpenCard(request, timeout=10)
                cards[card_no] = merchant.merchant_id
            for paid in (True, False):  # a credited top-up (money to spend) and an open one
                order = await center.CreateRechargeOrder(
                    recharge_pb2.CreateRechargeOrderRequest(
                        card_no=card_no,
                        pay_amount_fen=50_000,
                        channel=recharge_pb2.CHANNEL_POS,
                        idempotency_key=uuid.uuid4().hex,
                        payer_openid="o-fuzz",
                        merchant_id=merchant.merchant_id,
                    ),
                    timeout=15,
                )
                orders.append(order.order_no)
                if paid:
                    await payer.Pay(wechatpay_pb2.PayRequest(out_trade_no=order.order_no), timeout=15)
    today = datetime.now(UTC).astimezone(CHINA).date().isoformat()
    refs = [m.wechat_ref() for m in MERCHANTS]
    values: dict[str, list[Any]] = {
        "merchant_id": [m.merchant_id for m in MERCHANTS],
        "card_no": list(cards),
        "order_no": orders + ["FZ" + uuid.uuid4().hex[:20] for _ in range(3)],
        "out_trade_no": orders,
        "out_refund_no": [f"{o}-refund" for o in orders],
        "pay_amount_fen": [100, 10_000, 50_000],
        "amount_fen": [1, 100, 500],
        "amount_total_fen": [10_000],
        "refund_fen": [10_000],
        "total_fen": [10_000],
        "channel": [recharge_pb2.CHANNEL_POS],
        "payer_openid": ["o-fuzz"],
        "openid": ["o-fuzz"],
        "idempotency_key": [uuid.uuid4().hex for _ in range(5)],
        "request_id": [uuid.uuid4().hex for _ in range(5)],
        "bill_date": [today],
        "mchid": [r.mchid for r in refs if r.mchid],
        "sp_mchid": [r.sp_mchid for r in refs if r.sp_mchid],
        "sub_mchid": [r.sub_mchid for r in refs if r.sub_mchid],
        "holder_name": ["Fuzz"],
        "operator": ["fuzz"],
        "reason": ["fuzzing"],
        "description": ["fuzz top-up"],
        "template_id": ["TPL_FUZZ"],
        "page_size": [2, 5],
        "method": ["*", "PreRecharge", "CreatePrepay"],
        "times": [1],
    }
    return Known(values, cards)


@pytest.fixture(scope="session")
def known(fuzz_stack: Stack) -> Known:
    return asyncio.run(_seed_entities(fuzz_stack))


@pytest.fixture(scope="session")
def caller(fuzz_stack: Stack) -> Iterator[Caller]:
    built = Caller(
        {
            "recharge": fuzz_stack.recharge.address,
            "card": fuzz_stack.card.address,
            "wechat": fuzz_stack.wechat.address,
        },
        # The stack's operator token (every role): operator, admin and fault calls are fuzzed
        # past the policy; anonymous callers are refused before any handler (test_access.py).
        token=fuzz_stack.client_auth().token,
    )
    try:
        yield built
    finally:
        built.close()
