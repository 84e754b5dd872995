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
from tests.integration.card_service.conftest import Stubs

GRPCURL = str(Path(sys.executable).parent / "grpcurl")
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
        (stubs.admin.OpenCard(card_pb2.OpenCardRequest(card_no="123")), "card_no"),
        (
            stubs.admin.SetRechargeRule(
                card_pb2.SetRechargeRuleRequest(tiers=[card_pb2.BonusTier(min_pay_fen=100, bonus_fen=1)] * 2)
            ),
            "tiers[1].min_pay_fen",
        ),
        (stubs.system.ListJournal(card_pb2.ListJournalRequest(card_no="62", page_token="zz")), "page_token"),
    ]
    for call, field in cases:
        error = await failure(call)
        assert (error.code(), error_field(error)) == (grpc.StatusCode.INVALID_ARGUMENT, field)


async def test_business_refusals_carry_their_reason_and_unknown_ids_are_not_found(stubs: Stubs) -> None:
    card_no = await stubs.open_card("6220000000000001")
    missing = await failure(
        stubs.system.PreRecharge(
            card_pb2.PreRechargeRequest(order_no="W1", card_no="6220000000000404", pay_amount_fen=1_000)
        )
    )
    exists = await failure(stubs.admin.OpenCard(card_pb2.OpenCardRequest(card_no=card_no)))
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
            card_pb2.PreRechargeRequest(order_no=order_no, card_no=card_no, pay_amount_fen=1_000)
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
            card_pb2.PreRechargeRequest(order_no=order_no, card_no=card_no, pay_amount_fen=100 + index)
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
        [GRPCURL, "-plaintext", "-d", json.dumps(body), address, method],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_grpcurl_opens_a_card_and_tops_it_up_through_reflection(card_server: ServiceProcess) -> None:
    address = card_server.address
    opened = grpcurl(
        address, "card.v1.CardAdmin/OpenCard", {"card_no": "6220000000000009", "holder_name": "Li"}
    )
    assert opened["status"] == "CARD_STATUS_ACTIVE"
    rule = grpcurl(
        address, "card.v1.CardAdmin/SetRechargeRule", {"tiers": [{"min_pay_fen": 100000, "bonus_fen": 20000}]}
    )
    pre = grpcurl(
        address,
        "card.v1.CardSystem/PreRecharge",
        {"order_no": "G1", "card_no": "6220000000000009", "pay_amount_fen": 100000},
    )
    assert (pre["status"], pre["bonus_fen"], pre["rule_version"]) == (
        "PRE_RECHARGE_STATUS_RECHARGING",
        "20000",
        rule["version"],
    )
    confirmed = grpcurl(address, "card.v1.CardSystem/ConfirmRecharge", {"order_no": "G1"})
    assert confirmed["status"] == "PRE_RECHARGE_STATUS_SUCCEEDED"
    card = grpcurl(address, "card.v1.CardSystem/GetCard", {"card_no": "6220000000000009"})
    assert (card["balance_fen"], card.get("pending_recharge_fen", "0")) == ("120000", "0")
    grpcurl(address, "card.v1.CardAdmin/SetRechargeRule", {})  # back to no bonus for other tests
