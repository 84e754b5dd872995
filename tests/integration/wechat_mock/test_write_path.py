"""The simulator's write path, counted (``Database.stats``), on SQLite and PostgreSQL: a bounded
number of write transactions per call, notifications claimed and recorded in batches, due refunds
settled in one commit. The background workers are stopped first, so only the calls write."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from rc_common.db import DbStats
from tests.integration.wechat_mock.conftest import Launcher, Running
from tests.integration.wechat_mock.fakes import FakeMerchant
from tests.waiting import eventually
from wechat_mock.domain.notifications import DeliveryStatus
from wechat_mock.service_layer.due_loop import DueLoop
from wechat_mock.service_layer.notifier import Notifier
from wechat_mock.service_layer.ports import DeliveryOutcome, DeliveryResult
from wechat_mock.service_layer.refunds import settle_due_refunds

#: The issue's bound: write transactions per CreatePrepay and per Pay.
MAX_UNITS_PER_CALL = 2


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def quiet(wechat: Running) -> DbStats:
    """Stop the notifier and the refund settler; the database's counters."""
    await wechat.simulator.notifier.stop()
    await wechat.simulator.settler.stop()
    return wechat.simulator.ctx.uow.db.stats


class GatedClient:
    """A merchant that holds every delivery until ``release`` is set, then acknowledges them all."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def deliver(self, headers: Mapping[str, str], body: bytes, timeout_s: float) -> DeliveryResult:
        self.calls += 1
        await self.release.wait()
        return DeliveryResult(DeliveryOutcome.ACKNOWLEDGED, "answered SUCCESS")


def asleep(worker: DueLoop) -> bool:
    """The worker has finished its step and waits for a wake-up or its idle time (only the loop's
    own wait future tells this)."""
    return worker._waiter is not None


async def test_create_prepay_and_pay_take_at_most_two_write_transactions_each(wechat: Running) -> None:
    stats = await quiet(wechat)
    counted: list[tuple[str, int]] = []
    for call in ("prepay", "prepay", "pay", "pay"):  # each twice: the call, then its replay
        before = stats.units
        await getattr(wechat.stubs, call)("WP-0001")
        counted.append((call, stats.units - before))
    assert all(units <= MAX_UNITS_PER_CALL for _, units in counted), counted
    assert [counted[0], counted[2]] == [("prepay", 1), ("pay", 1)]  # the happy path: one each


async def test_notifier_claims_due_notifications_at_once_and_records_their_outcomes_in_one_commit(
    wechat: Running,
) -> None:
    stats = await quiet(wechat)
    numbers = [f"NB-{i:04d}" for i in range(8)]
    for number in numbers:
        await wechat.stubs.paid(number)
    client = GatedClient()
    notifier = Notifier(wechat.simulator.ctx, client, schedule=(0.2,), timeout_s=5.0, idle_s=1.0)
    before = stats.units
    notifier.start()
    try:
        await eventually(lambda: client.calls == len(numbers))
        assert stats.units - before == 1  # one claim for all eight
        client.release.set()

        async def all_delivered() -> bool:
            async with wechat.simulator.ctx.uow(readonly=True) as uow:
                records = await uow.notifications.list()
            return len(records) == len(numbers) and all(
                r.status is DeliveryStatus.DELIVERED and r.attempts == 1 for r in records
            )

        await eventually(all_delivered)
    finally:
        await notifier.stop()
    assert stats.units - before == 2  # the claim, then one commit for the eight outcomes
    assert stats.labelled["notifier"] == 2
    assert client.calls == len(numbers)


async def test_due_refunds_are_settled_in_one_commit(launch: Launcher) -> None:
    wechat = await launch(refund_delay=0.0)
    stats = await quiet(wechat)
    for i in range(3):
        await wechat.stubs.paid(f"RB-{i:04d}")
        await wechat.stubs.refund(f"RB-{i:04d}", f"RB-{i:04d}-r", 60)
    await wechat.stubs.refund("RB-0000", "RB-0000-s", 40)  # two refunds of one order, one batch
    before = stats.units
    assert await settle_due_refunds(wechat.simulator.ctx) is None
    assert stats.units - before == 1
    assert stats.labelled["refund_settler"] == 1
    assert (await wechat.stubs.query("RB-0000")).refunded_fen == 100
    async with wechat.simulator.ctx.uow(readonly=True) as uow:
        notifications = await uow.notifications.list()
    assert sorted(n.event_type for n in notifications).count("REFUND.SUCCESS") == 4


async def test_notifier_is_told_what_is_due_and_reads_nothing_to_deliver_or_retry(
    launch: Launcher, merchant: FakeMerchant
) -> None:
    merchant.policy = lambda item, index: "FAIL" if index == 0 else "SUCCESS"  # one retry
    wechat = await launch(idle_poll=60.0)  # no periodic look at the database during the test
    await wechat.simulator.settler.stop()  # only the notifier and the calls read from here on
    stats = wechat.simulator.ctx.uow.db.stats
    await wechat.stubs.prepay("NR-0000")
    await eventually(lambda: stats.reads >= 1)  # the workers' looks at start
    notifier = wechat.simulator.notifier.loop
    await eventually(lambda: asleep(notifier), what="the notifier's look at start, then its idle wait")
    reads = stats.reads
    await wechat.stubs.pay("NR-0000")  # its one read: the order
    await merchant.wait_count(2)  # the first attempt fails, the retry (0.2 s later) succeeds
    assert stats.reads - reads == 1
