"""The top-up's use cases over the in-memory unit of work and port fakes: create, pay, credit,
void-then-refund, and races between a read and its commit (``tests/integration`` runs the same
behaviours against SQLite)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from rc_common.errors import Refused
from rc_common.outcomes import Done
from recharge_service.domain.merchant import WechatAccount
from recharge_service.domain.order import OrderStatus
from recharge_service.domain.timeline import NOTIFICATION, REMOTE_CALL
from recharge_service.service_layer import confirm, refund, settle
from recharge_service.service_layer.create import create_recharge_order
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.notifications import start_credit
from recharge_service.service_layer.orders import flow
from recharge_service.service_layer.payment import record_payment, record_payment_then_confirm
from recharge_service.service_layer.ports import (
    CONFIRM_RECHARGE,
    CREATE_PREPAY,
    CREATE_REFUND,
    PRE_RECHARGE,
    SUCCEEDED,
    VOIDED,
    CardRecharge,
)
from tests.integration.recharge_service.fakes import (
    MERCHANT,
    Clock,
    FakeCard,
    FakePayments,
    refused,
    unknown,
)
from tests.unit.recharge_service.conftest import (
    command,
    followups,
    new_order,
    paid_order,
    payment_of,
    reload,
    transitions,
)
from tests.unit.recharge_service.fake_uow import MemoryStore

S = OrderStatus


async def sent_rows(deps: Deps, order_no: str) -> list[str]:
    async with deps.uow(readonly=True) as uow:
        entries = await uow.timeline.for_order(order_no)
    return [e.method for e in entries if e.kind == REMOTE_CALL and e.outcome == "sent"]


async def credit_unknown_order(deps: Deps, card: FakeCard) -> str:
    order = await paid_order(deps)
    card.script("ConfirmRecharge", unknown("DEADLINE_EXCEEDED"))
    assert (await confirm.credit(deps, order.order_no)).status is S.CREDIT_UNKNOWN
    return order.order_no


# -- the happy path ---------------------------------------------------------------------------


async def test_a_happy_top_up_is_credited_with_two_followups_in_four_write_transactions(
    deps: Deps, store: MemoryStore, card: FakeCard
) -> None:
    units = store.units
    order = await create_recharge_order(command(), deps)
    assert order.status is S.AWAITING_PAYMENT
    assert (order.bonus_fen, order.credit_amount_fen) == (2_000, 102_000)
    assert store.units - units == 2  # insert + both announcements; the answers + AWAITING_PAYMENT

    paid, announced, lease = await record_payment_then_confirm(
        deps, payment_of(order), source="notification"
    )
    assert paid.status is S.PAID and announced and lease is not None
    assert store.units - units == 3  # payment, PAID, the confirm's sent row and the lease together
    start_credit(deps, order.order_no, announced=announced, lease=lease)
    await deps.background.join()

    assert store.units - units == 4  # CREDITED with its follow-ups
    assert (await reload(deps, order.order_no)).status is S.CREDITED
    assert card.methods() == ["PreRecharge", "ConfirmRecharge"]
    assert await followups(deps, order.order_no) == [
        ("customer_notice", f"{order.order_no}.credited.notice"),
        ("business_callback", f"{order.order_no}.credited.callback"),
    ]
    assert await transitions(deps, order.order_no) == ["CREATED", "AWAITING_PAYMENT", "PAID", "CREDITED"]
    assert await sent_rows(deps, order.order_no) == [PRE_RECHARGE, CREATE_PREPAY, CONFIRM_RECHARGE]


async def test_the_same_key_returns_the_same_order_without_calling_out_or_writing_again(
    deps: Deps, store: MemoryStore, card: FakeCard, payments: FakePayments
) -> None:
    first = await create_recharge_order(command(), deps)
    units = store.units
    second = await create_recharge_order(command(), deps)
    assert (second.order_no, second.prepay_id) == (first.order_no, first.prepay_id)
    assert store.units == units
    assert len(card.calls) == 1 and len(payments.calls) == 1


# -- refusals and unknowns --------------------------------------------------------------------


async def test_a_refused_pre_recharge_rejects_the_order_and_never_asks_for_a_prepay(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    card.script("PreRecharge", refused("CARD_FROZEN"))
    with pytest.raises(Refused) as refusal:
        await create_recharge_order(command(), deps)
    assert refusal.value.reason == "CARD_FROZEN"
    order_no = refusal.value.metadata["order_no"]
    order = await reload(deps, order_no)
    assert (order.status, order.failure_reason) == (S.REJECTED, "CARD_FROZEN")
    assert payments.of("CreatePrepay") == []
    assert await followups(deps, order_no) == [("business_callback", f"{order_no}.rejected.callback")]
    with pytest.raises(Refused) as again:  # a replay answers the same without asking again
        await create_recharge_order(command(), deps)
    assert again.value.metadata["order_no"] == order_no
    assert card.methods() == ["PreRecharge"]


async def test_an_unknown_confirm_is_credit_unknown_and_never_voids_or_refunds(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await paid_order(deps)
    card.script("ConfirmRecharge", unknown("DEADLINE_EXCEEDED"))
    result = await confirm.credit(deps, order.order_no)
    assert result.status is S.CREDIT_UNKNOWN
    assert result.attempts == 1 and "DEADLINE_EXCEEDED" in result.last_error
    assert "VoidRecharge" not in card.methods()
    assert payments.of("CreateRefund") == []
    assert await followups(deps, order.order_no) == []


# -- void before refund (I1) ------------------------------------------------------------------


class WatchingPayments(FakePayments):
    """Notes, when a refund leaves, what the order's committed status and the card's record were."""

    def __init__(self, store: MemoryStore, card: FakeCard) -> None:
        super().__init__()
        self.store = store
        self.card = card
        self.at_refund: list[tuple[OrderStatus, str]] = []

    async def create_refund(self, account: WechatAccount, out_trade_no: str, *args: Any) -> Any:
        self.at_refund.append((self.store.order(out_trade_no).status, self.card.records[out_trade_no].status))
        return await super().create_refund(account, out_trade_no, *args)


async def test_a_void_answered_voided_commits_refunding_then_refunds_with_the_r1_number(
    deps: Deps, store: MemoryStore, card: FakeCard
) -> None:
    watching = deps.payments = WatchingPayments(store, card)
    order_no = await credit_unknown_order(deps, card)
    async with flow(deps):
        result = await refund.refund_path(deps, order_no, "card closed")
    assert result.status is S.REFUNDING
    assert result.out_refund_no == f"{order_no}-R1"
    assert watching.at_refund == [(S.REFUNDING, VOIDED)]  # committed and fenced before it left
    assert watching.of("CreateRefund") == [
        {
            "account": (await deps.merchants.current(MERCHANT)).wechat,  # type: ignore[union-attr]
            "out_trade_no": order_no,
            "out_refund_no": f"{order_no}-R1",
            "refund_fen": 100_000,
            "total_fen": 100_000,
        }
    ]
    assert (await sent_rows(deps, order_no))[-1] == CREATE_REFUND  # announced with REFUNDING


async def test_a_refund_answered_success_is_refunded_with_the_failure_followups(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order = await paid_order(deps)
    card.script("ConfirmRecharge", refused("CARD_FROZEN"))
    payments.refund_status = "SUCCESS"
    result = await confirm.credit(deps, order.order_no)
    assert result.status is S.REFUNDED
    assert card.methods()[-2:] == ["ConfirmRecharge", "VoidRecharge"]
    assert await transitions(deps, order.order_no) == [
        "CREATED", "AWAITING_PAYMENT", "PAID", "REFUNDING", "REFUNDED",
    ]  # fmt: skip
    assert await followups(deps, order.order_no) == [
        ("customer_notice", f"{order.order_no}.refunded.notice"),
        ("business_callback", f"{order.order_no}.refunded.callback"),
    ]


async def test_a_void_answered_succeeded_is_credited_and_never_refunded(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order_no = await credit_unknown_order(deps, card)
    card.script("VoidRecharge", Done(CardRecharge(order_no, SUCCEEDED), 1.0))
    result = await refund.refund_path(deps, order_no, "operator asked")
    assert result.status is S.CREDITED
    assert payments.of("CreateRefund") == []
    assert [topic for topic, _ in await followups(deps, order_no)] == ["customer_notice", "business_callback"]


async def test_a_void_without_an_answer_decides_nothing_and_refunds_nothing(
    deps: Deps, card: FakeCard, payments: FakePayments
) -> None:
    order_no = await credit_unknown_order(deps, card)
    card.script("VoidRecharge", unknown(), refused("WHATEVER"))
    for attempts in (2, 3):
        result = await refund.refund_path(deps, order_no, "test")
        assert (result.status, result.attempts) == (S.CREDIT_UNKNOWN, attempts)
    assert payments.of("CreateRefund") == []


# -- duplicates and races ---------------------------------------------------------------------


async def test_a_duplicate_payment_changes_nothing_but_the_timeline(
    deps: Deps, store: MemoryStore, clock: Clock
) -> None:
    order = await paid_order(deps)
    before = await reload(deps, order.order_no)
    async with deps.uow(readonly=True) as uow:
        recorded = await uow.payments.for_order(order.order_no)
    clock.advance(timedelta(minutes=1))
    again, announced, lease = await record_payment_then_confirm(
        deps, payment_of(order), source="notification"
    )
    assert again.status is S.PAID and not announced and lease is None  # nobody starts a second credit
    after = await reload(deps, order.order_no)
    assert after == before and after.version == before.version
    async with deps.uow(readonly=True) as uow:
        assert await uow.payments.for_order(order.order_no) == recorded  # the first one stays
        entries = await uow.timeline.for_order(order.order_no)
    assert [e.outcome for e in entries if e.kind == NOTIFICATION] == ["accepted", "duplicate"]
    assert await transitions(deps, order.order_no) == ["CREATED", "AWAITING_PAYMENT", "PAID"]


async def test_a_payment_for_a_credited_order_adds_no_followups(deps: Deps) -> None:
    order = await paid_order(deps)
    assert (await confirm.credit(deps, order.order_no)).status is S.CREDITED
    await record_payment(deps, payment_of(order), source="notification")
    assert (await reload(deps, order.order_no)).status is S.CREDITED
    assert len(await followups(deps, order.order_no)) == 2


async def test_a_change_committed_between_read_and_commit_is_re_read_and_neither_is_lost(
    deps: Deps, store: MemoryStore, card: FakeCard
) -> None:
    order_no = await credit_unknown_order(deps, card)
    version = store.order(order_no).version

    async def meanwhile() -> None:  # another visit notes an undecided attempt first
        await settle.note_undecided(deps, order_no, "GetRecharge UNAVAILABLE")

    store.before_next_write(meanwhile)
    failed = store.failed_units
    result = await settle.mark_credited(deps, order_no, "card system says SUCCEEDED")
    assert store.failed_units - failed == 1  # the first commit met StaleOrder and wrote nothing
    stored = store.order(order_no)
    assert result.status is stored.status is S.CREDITED
    assert (stored.attempts, stored.last_error) == (2, "GetRecharge UNAVAILABLE")
    assert stored.version == version + 2
    assert (await transitions(deps, order_no)).count("CREDITED") == 1
    assert len(await followups(deps, order_no)) == 2


async def test_two_notifications_of_one_payment_at_once_make_one_paid_transition_and_one_credit(
    deps: Deps, store: MemoryStore, card: FakeCard
) -> None:
    order = await new_order(deps)
    failed = store.failed_units
    results = await asyncio.gather(
        *(record_payment_then_confirm(deps, payment_of(order), source="notification") for _ in range(2))
    )
    assert store.failed_units - failed == 1  # the loser's commit was stale; it re-read
    assert sorted(announced for _, announced, _ in results) == [False, True]
    assert sorted(lease is not None for *_, lease in results) == [False, True]
    for paid, announced, lease in results:
        start_credit(deps, paid.order_no, announced=announced, lease=lease)
    await deps.background.join()
    assert (await reload(deps, order.order_no)).status is S.CREDITED
    assert card.methods().count("ConfirmRecharge") == 1
    assert (await sent_rows(deps, order.order_no)).count(CONFIRM_RECHARGE) == 1
    async with deps.uow(readonly=True) as uow:
        assert len(await uow.payments.for_order(order.order_no)) == 1


async def test_two_creates_with_one_key_at_once_make_one_order(deps: Deps, store: MemoryStore) -> None:
    failed = store.failed_units
    first, second = await asyncio.gather(*(create_recharge_order(command(), deps) for _ in range(2)))
    assert store.failed_units > failed  # one insert met the other's idempotency key
    assert first.order_no == second.order_no
    assert first.status is second.status is S.AWAITING_PAYMENT
    assert len(store.tables.orders) == 1
    assert (await transitions(deps, first.order_no)).count("AWAITING_PAYMENT") == 1


async def test_a_known_order_that_went_stale_is_caught_by_the_version_and_decided_again(
    deps: Deps, store: MemoryStore, card: FakeCard
) -> None:
    order_no = await credit_unknown_order(deps, card)
    known = await reload(deps, order_no)
    await settle.note_undecided(deps, order_no, "GetRecharge UNAVAILABLE")  # after we read it
    reads, failed = store.reads, store.failed_units
    result = await settle.mark_credited(deps, order_no, "card system says SUCCEEDED", known=known)
    assert store.failed_units - failed == 1  # decided on the stale copy: the version refused it
    assert store.reads - reads == 1  # then read once and decided again
    stored = store.order(order_no)
    assert result.status is stored.status is S.CREDITED
    assert stored.last_error == "GetRecharge UNAVAILABLE"  # the other writer's change survived
    assert (await transitions(deps, order_no)).count("CREDITED") == 1
