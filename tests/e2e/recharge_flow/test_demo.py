"""`make run`'s two merchants and ``scripts.pos_demo`` against the running services: the demo tops
up the merchant's own demo card (the default one: the tea house, direct mode; ``--merchant bakery``:
partner mode) with that merchant's bonus, then spends at that merchant; opening the merchants again
(every `make run` start) changes nothing."""

from __future__ import annotations

import asyncio
import re
import sys

import pytest

from protos.card.v1 import card_pb2
from protos.recharge.v1 import recharge_pb2
from scripts import pos_demo
from scripts.merchants import DemoMerchant
from scripts.stack import ROOT
from tests.e2e.merchants import DIRECT, MERCHANTS, PARTNER, open_all
from tests.e2e.recharge_flow.conftest import Clients

CREDITED = recharge_pb2.ORDER_STATUS_CREDITED
PAY, SPEND = 50_000, 1_200


async def run_pos_demo(clients: Clients, *args: str) -> tuple[int, str, str]:
    stack = clients.stack
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.pos_demo",
        *("--recharge", stack.recharge.address, "--card", stack.card.address),
        *("--wechat", stack.wechat.address, "--pay-fen", str(PAY), "--spend-fen", str(SPEND)),
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("merchant", "args", "bonus"),
    [(DIRECT, (), 8_000), (PARTNER, ("--merchant", PARTNER.merchant_id), 3_000)],
    ids=["default-direct", "partner"],
)
async def test_pos_demo_tops_up_the_merchants_demo_card_with_its_bonus_and_spends_there(
    clients: Clients, merchant: DemoMerchant, args: tuple[str, ...], bonus: int
) -> None:
    card_no = merchant.first_card
    before = await clients.balance(card_no)
    code, out, err = await run_pos_demo(clients, *args)
    assert code == 0, out + err
    found = re.search(r"order (\S+) ", out)
    assert found, out
    order_no = found.group(1)
    clients.created[order_no] = merchant

    order = await clients.order(order_no)  # this merchant's order (another's would be NOT_FOUND)
    assert (order.status, order.card_no) == (CREDITED, card_no)
    assert (order.pay_amount_fen, order.bonus_fen) == (PAY, bonus)
    assert await clients.principal_credits(card_no, order_no) == 1
    spends = [e for e in await clients.journal(card_no) if e.kind == card_pb2.JOURNAL_KIND_CONSUME]
    assert spends and spends[-1].amount_fen == -SPEND
    assert await clients.balance(card_no) == before + PAY + bonus - SPEND
    assert f"spent ¥12.00 at {merchant.merchant_id}" in out


async def test_pos_demo_refuses_another_merchants_card_and_charges_nothing(clients: Clients) -> None:
    card_no = DIRECT.first_card
    before = await clients.balance(card_no)
    code, out, err = await run_pos_demo(clients, "--merchant", PARTNER.merchant_id, "--card-no", card_no)
    assert code == 2, out + err
    assert "NOT_FOUND" in err  # the bakery cannot even see the tea house's card
    assert await clients.balance(card_no) == before


def test_pos_demo_help_says_what_merchant_is(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        pos_demo.main(["--help"])
    assert done.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "--merchant MERCHANT the merchant this POS sells for (its merchant_id)" in shown
    assert "teahouse (direct mode), bakery (partner mode) (default: teahouse)" in shown


async def test_opening_the_demo_merchants_again_changes_nothing(clients: Clients) -> None:
    notes = await asyncio.to_thread(open_all, clients.stack, MERCHANTS)
    for merchant in MERCHANTS:
        got = await clients.ops.GetMerchant(
            recharge_pb2.GetMerchantRequest(merchant_id=merchant.merchant_id), timeout=5
        )
        assert got.merchant.version == 1 and len(got.history) == 1
        rule = await clients.admin.GetRechargeRule(
            card_pb2.GetRechargeRuleRequest(merchant_id=merchant.merchant_id), timeout=5
        )
        assert rule.version == 1
        assert sorted((t.min_pay_fen, t.bonus_fen) for t in rule.tiers) == sorted(merchant.rule)
        assert any(n.startswith(f"merchant {merchant.merchant_id} v1 ({merchant.mode} mode") for n in notes)
