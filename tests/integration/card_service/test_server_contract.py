"""The wire contract of a real ``python -m card_service``: status codes, reasons, paging, grpcurl."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path

import grpc
import pytest

from protos.card.v1 import card_pb2
from rc_common.grpc_status import error_field, error_reason
from scripts.stack import ServiceProcess
from tests import auth
from tests.integration.card_service.conftest import MERCHANT, Stubs

GRPCURL = str(Path(sys.executable).parent / "grpcurl")
RECHARGING = card_pb2.PRE_RECHARGE_STATUS_RECHARGING
SUCCEEDED = card_pb2.PRE_RECHARGE_STATUS_SUCCEEDED
VOIDED = card_pb2.PRE_RECHARGE_STATUS_VOIDED


async def failure(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


async def test_invalid_input_is_invalid_argument_naming_the_field(stubs: Stubs) -> None:
    cases = [
        (stubs.system.PreRecharge(card_pb2.PreRechargeRequest(card_no="62", pay_amount_fen=1)), "order_no"),
        (stubs.system.PreRecharge(card_pb2.PreRechargeRequest(order_no="W", pay_amount_fen=1)), "card_no"),
        (stubs.system.PreRecharge(card_pb2.PreRechargeRequest(order_no="W", card_no="62")), "pay_amount_fen"),
        (stubs.system.ConfirmRecharge(card_pb2.ConfirmRechargeRequest()), "order_no"),
        (
            stubs.system.Consume(card_pb2.ConsumeRequest(request_id="W", card_no="62", amount_fen=-1)),
            "amount_fen",
        ),
        (
            stubs.system.PreRecharge(
                card_pb2.PreRechargeRequest(order_no="W", card_no="62", pay_amount_fen=1)
            ),
            "merchant_id",
        ),
        (stubs.admin.OpenCard(card_pb2.OpenCardRequest(card_no="123", merchant_id=MERCHANT)), "card_no"),
        (stubs.admin.OpenCard(card_pb2.OpenCardRequest(card_no="6220000000000100")), "merchant_id"),
        (
            stubs.admin.OpenCard(card_pb2.OpenCardRequest(card_no="6220000000000100", merchant_id="m 1")),
            "merchant_id",
        ),
        (
            stubs.admin.OpenCard(card_pb2.OpenCardRequest(card_no="6220000000000100", merchant_id="m" * 33)),
            "merchant_id",
        ),
        (
            stubs.admin.SetRechargeRule(
                card_pb2.SetRechargeRuleRequest(
                    tiers=[card_pb2.BonusTier(min_pay_fen=100, bonus_fen=1)] * 2, merchant_id=MERCHANT
                )
            ),
            "tiers[1].min_pay_fen",
        ),
        (stubs.admin.SetRechargeRule(card_pb2.SetRechargeRuleRequest()), "merchant_id"),
        (stubs.admin.GetRechargeRule(card_pb2.GetRechargeRuleRequest()), "merchant_id"),
        (stubs.system.GetCard(card_pb2.GetCardRequest(card_no="62", merchant_id="m/1")), "merchant_id"),
        (stubs.system.ListJournal(card_pb2.ListJournalRequest(card_no="62", page_token="zz")), "page_token"),
    ]
    for call, field in cases:
        error = await failure(call)
        assert (error.code(), error_field(error)) == (grpc.StatusCode.INVALID_ARGUMENT, field)
    never_opened = await failure(stubs.system.GetCard(card_pb2.GetCardRequest(card_no="6220000000000100")))
    assert never_opened.code() is grpc.StatusCode.NOT_FOUND


async def test_business_refusals_carry_their_reason_and_unknown_ids_are_not_found(stubs: Stubs) -> None:
    card_no = await stubs.open_card("6220000000000001")
    missing = await failure(
        stubs.system.PreRecharge(
            card_pb2.PreRechargeRequest(
                order_no="W1", card_no="6220000000000404", pay_amount_fen=1_000, merchant_id=MERCHANT
            )
        )
    )
    exists = await failure(stubs.admin.OpenCard(card_pb2.OpenCardRequest(card_no=card_no, merchant_id="m-2")))
    await stubs.admin.CloseCard(card_pb2.CloseCardRequest(card_no=card_no))
    closed = await failure(stubs.admin.UnfreezeCard(card_pb2.UnfreezeCardRequest(card_no=card_no)))
    for error, reason in ((missing, "CARD_NOT_FOUND"), (exists, "CARD_EXISTS"), (closed, "CARD_CLOSED")):
        assert (error.code(), error_reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, reason)
    for call in (
        stubs.system.ConfirmRecharge(card_pb2.ConfirmRechargeRequest(order_no="W404")),
        stubs.system.GetRecharge(card_pb2.GetRechargeRequest(order_no="W404")),
        stubs.system.GetCard(card_pb2.GetCardRequest(card_no="6220000000000404")),
        stubs.system.ReverseConsume(card_pb2.ReverseConsumeRequest(request_id="W404")),
    ):
        assert (await failure(call)).code() is grpc.StatusCode.NOT_FOUND


async def test_confirm_and_void_from_many_clients_credit_at_most_once(stubs: Stubs) -> None:
    card_no = await stubs.open_card("6220000000000002")
    for index in range(3):
        order_no = f"W2-{index}"
        await stubs.system.PreRecharge(
            card_pb2.PreRechargeRequest(
                order_no=order_no, card_no=card_no, pay_amount_fen=1_000, merchant_id=MERCHANT
            )
        )
        calls = [
            stubs.system.ConfirmRecharge(card_pb2.ConfirmRechargeRequest(order_no=order_no)) for _ in range(8)
        ]
        calls += [
            stubs.system.VoidRecharge(card_pb2.VoidRechargeRequest(order_no=order_no)) for _ in range(8)
        ]
        random.Random(index).shuffle(calls)
        statuses = {answer.status for answer in await asyncio.gather(*calls)}
        assert len(statuses) == 1 and statuses <= {SUCCEEDED, VOIDED}
    journal = await stubs.system.ListJournal(card_pb2.ListJournalRequest(card_no=card_no))
    keys = [e.business_key for e in journal.entries]
    assert len(keys) == len(set(keys)), "one principal entry per order at most"
    assert await stubs.balance(card_no) == 1_000 * len(keys)


async def test_the_journal_pages_with_opaque_tokens(stubs: Stubs) -> None:
    card_no = await stubs.open_card("6220000000000003")
    for index in range(5):
        order_no = f"W3-{index}"
        await stubs.system.PreRecharge(
            card_pb2.PreRechargeRequest(
                order_no=order_no, card_no=card_no, pay_amount_fen=100 + index, merchant_id=MERCHANT
            )
        )
        await stubs.system.ConfirmRecharge(card_pb2.ConfirmRechargeRequest(order_no=order_no))
    await stubs.system.Consume(card_pb2.ConsumeRequest(request_id="W3-C", card_no=card_no, amount_fen=50))
    entries, token, pages = [], "", 0
    while True:
        page = await stubs.system.ListJournal(
            card_pb2.ListJournalRequest(card_no=card_no, page_size=4, page_token=token)
        )
        entries += page.entries
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 2
    assert [e.entry_id for e in entries] == sorted(e.entry_id for e in entries)
    assert [e.amount_fen for e in entries] == [100, 101, 102, 103, 104, -50]
    assert entries[-1].balance_after_fen == await stubs.balance(card_no) == 460


def grpcurl(address: str, method: str, body: dict[str, object]) -> dict[str, object]:
    done = subprocess.run(
        [GRPCURL, "-plaintext", "-H", f"authorization: Bearer {auth.token()}", "-d", json.dumps(body),
         address, method],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_grpcurl_opens_a_card_and_tops_it_up_through_reflection(card_server: ServiceProcess) -> None:
    address = card_server.address
    merchant = "m-grpcurl"  # its own program: its rule gives no other test's cards a bonus
    opened = grpcurl(
        address,
        "card.v1.CardAdmin/OpenCard",
        {"card_no": "6220000000000009", "holder_name": "Li", "merchant_id": merchant},
    )
    assert (opened["status"], opened["merchant_id"]) == ("CARD_STATUS_ACTIVE", merchant)
    rule = grpcurl(
        address,
        "card.v1.CardAdmin/SetRechargeRule",
        {"tiers": [{"min_pay_fen": 100000, "bonus_fen": 20000}], "merchant_id": merchant},
    )
    assert (rule["version"], rule["merchant_id"]) == ("1", merchant)
    pre = grpcurl(
        address,
        "card.v1.CardSystem/PreRecharge",
        {"order_no": "G1", "card_no": "6220000000000009", "pay_amount_fen": 100000, "merchant_id": merchant},
    )
    assert (pre["status"], pre["bonus_fen"], pre["rule_version"], pre["merchant_id"]) == (
        "PRE_RECHARGE_STATUS_RECHARGING",
        "20000",
        rule["version"],
        merchant,
    )
    confirmed = grpcurl(
        address, "card.v1.CardSystem/ConfirmRecharge", {"order_no": "G1", "merchant_id": merchant}
    )
    assert confirmed["status"] == "PRE_RECHARGE_STATUS_SUCCEEDED"
    card = grpcurl(address, "card.v1.CardSystem/GetCard", {"card_no": "6220000000000009"})
    assert (card["balance_fen"], card.get("pending_recharge_fen", "0")) == ("120000", "0")


async def test_another_merchants_cards_and_pre_recharges_are_not_found_and_unchanged(stubs: Stubs) -> None:
    card_no = await stubs.open_card("6220000000000004")
    other = "m-wire-other"
    system = stubs.system
    refused = await failure(system.PreRecharge(
        card_pb2.PreRechargeRequest(order_no="W4-0", card_no=card_no, pay_amount_fen=1_000, merchant_id=other)
    ))
    assert (refused.code(), error_reason(refused)) == (
        grpc.StatusCode.FAILED_PRECONDITION, "CARD_NOT_FOUND"
    ), "the answer a missing card gets"
    pre = await system.PreRecharge(card_pb2.PreRechargeRequest(
        order_no="W4-1", card_no=card_no, pay_amount_fen=1_000, merchant_id=MERCHANT
    ))
    assert (pre.merchant_id, pre.rule_version, pre.status) == (MERCHANT, 0, RECHARGING)
    for call in (
        system.ConfirmRecharge(card_pb2.ConfirmRechargeRequest(order_no="W4-1", merchant_id=other)),
        system.VoidRecharge(card_pb2.VoidRechargeRequest(order_no="W4-1", merchant_id=other)),
        system.GetRecharge(card_pb2.GetRechargeRequest(order_no="W4-1", merchant_id=other)),
        system.GetCard(card_pb2.GetCardRequest(card_no=card_no, merchant_id=other)),
        system.ListJournal(card_pb2.ListJournalRequest(card_no=card_no, merchant_id=other)),
    ):
        assert (await failure(call)).code() is grpc.StatusCode.NOT_FOUND
    spend = await failure(system.Consume(
        card_pb2.ConsumeRequest(request_id="W4-C", card_no=card_no, amount_fen=1, merchant_id=other)
    ))
    assert error_reason(spend) == "CARD_NOT_FOUND"
    stored = await system.GetRecharge(card_pb2.GetRechargeRequest(order_no="W4-1", merchant_id=MERCHANT))
    assert (stored.status, stored.merchant_id) == (RECHARGING, MERCHANT)
    card = await system.GetCard(card_pb2.GetCardRequest(card_no=card_no, merchant_id=MERCHANT))
    assert (card.merchant_id, card.balance_fen, card.pending_recharge_fen) == (MERCHANT, 0, 1_000)
    rule = await stubs.admin.GetRechargeRule(card_pb2.GetRechargeRuleRequest(merchant_id=other))
    assert (rule.merchant_id, rule.version, rule.min_pay_fen) == (other, 0, 100)
