"""The gRPC adapters: retries on unknown only, a deadline per attempt, every attempt on the timeline."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from rc_common.db import Database
from rc_common.outcomes import Done, Rejected, Unknown
from recharge_service.adapters.card_client import CardClient
from recharge_service.adapters.payment_client import PaymentClient
from recharge_service.adapters.retrying import RetryPolicy
from recharge_service.adapters.unit_of_work import SqlUnitOfWork as UnitOfWork
from recharge_service.adapters.unit_of_work import uow_factory
from recharge_service.domain.merchant import WechatAccount, WechatMode
from recharge_service.domain.timeline import REMOTE_CALL
from recharge_service.service_layer.actor import acting_as
from recharge_service.service_layer.timeline_notes import TimelineNotes
from tests.integration.recharge_service.fakes import MERCHANT, SP_MCHID, SUB_MCHID
from tests.integration.recharge_service.grpc_fakes import FakeCardSystem, FakeWechat, serving

FAST = RetryPolicy(attempts=3, deadline=0.3, backoff=0.01, backoff_max=0.02)


@pytest.fixture
async def fake_card() -> AsyncIterator[tuple[FakeCardSystem, grpc.aio.Channel]]:
    fake = FakeCardSystem()
    async with serving(fake) as server, grpc.aio.insecure_channel(server.address) as channel:
        yield fake, channel


async def remote_rows(db: Database, order_no: str) -> list[tuple[str, str, str, str]]:
    async with UnitOfWork(db, readonly=True) as uow:
        entries = await uow.timeline.for_order(order_no)
    return [(e.method, e.outcome, e.detail, e.actor) for e in entries if e.kind == REMOTE_CALL]


async def test_an_unavailable_card_system_is_retried_and_each_attempt_is_on_the_timeline(
    db: Database, fake_card: tuple[FakeCardSystem, grpc.aio.Channel]
) -> None:
    fake, channel = fake_card
    client = CardClient(channel, TimelineNotes(uow_factory(db)), FAST, FAST)
    fake.script("PreRecharge", "unavailable", "hang")
    outcome = await client.pre_recharge("R1", "8800000000000001", 100_000, MERCHANT)
    assert isinstance(outcome, Done)
    assert (outcome.value.status, outcome.value.bonus_fen, outcome.value.credit_amount_fen) == (
        "RECHARGING",
        2_000,
        102_000,
    )
    assert len(fake.of("PreRecharge")) == 3
    assert {request.merchant_id for request in fake.of("PreRecharge")} == {MERCHANT}
    method = "/card.v1.CardSystem/PreRecharge"
    sent = "sent, answer pending"
    assert await remote_rows(db, "R1") == [  # each attempt is on record before it is sent
        (method, "sent", f"attempt 1/3: {sent}", "system"),
        (method, "unknown", "attempt 1/3", "system"),
        (method, "sent", f"attempt 2/3: {sent}", "system"),
        (method, "unknown", "attempt 2/3", "system"),
        (method, "sent", f"attempt 3/3: {sent}", "system"),
        (method, "done", "attempt 3/3: RECHARGING", "system"),
    ]


async def test_a_refusal_is_final_and_not_retried(
    db: Database, fake_card: tuple[FakeCardSystem, grpc.aio.Channel]
) -> None:
    fake, channel = fake_card
    client = CardClient(channel, TimelineNotes(uow_factory(db)), FAST, FAST)
    fake.script("PreRecharge", ("refuse", "CARD_FROZEN"))
    outcome = await client.pre_recharge("R2", "8800000000000001", 100_000, MERCHANT)
    assert isinstance(outcome, Rejected)
    assert (outcome.code, outcome.reason) == ("FAILED_PRECONDITION", "CARD_FROZEN")
    assert len(fake.of("PreRecharge")) == 1


async def test_confirm_gives_up_after_its_attempts_as_unknown(
    db: Database, fake_card: tuple[FakeCardSystem, grpc.aio.Channel]
) -> None:
    fake, channel = fake_card
    confirm_policy = RetryPolicy(attempts=2, deadline=0.2, backoff=0.01, backoff_max=0.02)
    client = CardClient(channel, TimelineNotes(uow_factory(db)), FAST, confirm_policy)
    await client.pre_recharge("R3", "8800000000000001", 100, MERCHANT)
    fake.script("ConfirmRecharge", "hang", "unavailable")
    with acting_as("sentinel"):
        outcome = await client.confirm_recharge("R3", MERCHANT)
    assert isinstance(outcome, Unknown)
    assert "after 2 attempts" in outcome.detail
    assert {request.merchant_id for request in fake.of("ConfirmRecharge")} == {MERCHANT}
    rows = [row for row in await remote_rows(db, "R3") if row[0].endswith("ConfirmRecharge")]
    assert [(outcome, actor) for _m, outcome, _d, actor in rows] == [
        ("sent", "sentinel"),
        ("unknown", "sentinel"),
    ] * 2


PARTNER = WechatAccount(WechatMode.PARTNER, SUB_MCHID, "wx1111111111111111")
DIRECT = WechatAccount(WechatMode.DIRECT, "1230000109", "wx2222222222222222", "/keys/direct")


@pytest.mark.parametrize(
    ("account", "named"),
    [(PARTNER, ("", SP_MCHID, SUB_MCHID)), (DIRECT, ("1230000109", "", ""))],
    ids=["partner", "direct"],
)
async def test_a_refund_request_is_sent_with_the_given_number_and_amounts(
    db: Database, account: WechatAccount, named: tuple[str, str, str]
) -> None:
    fake = FakeWechat()
    async with serving(fake) as server, grpc.aio.insecure_channel(server.address) as channel:
        client = PaymentClient(channel, TimelineNotes(uow_factory(db)), FAST, SP_MCHID)
        fake.script("CreateRefund", "unavailable")
        outcome = await client.create_refund(account, "R4", "R4-R1", 500, 500, "card closed")
    assert isinstance(outcome, Done) and outcome.value.status == "PROCESSING"
    requests = fake.of("CreateRefund")
    assert len(requests) == 2
    assert {(r.out_trade_no, r.out_refund_no, r.refund_fen, r.total_fen) for r in requests} == {
        ("R4", "R4-R1", 500, 500)
    }
    # Partner mode names the provider's sp_mchid with the sub_mchid; direct mode its own mchid.
    assert {(r.merchant.mchid, r.merchant.sp_mchid, r.merchant.sub_mchid) for r in requests} == {named}
