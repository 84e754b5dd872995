"""Notifications to a merchant running several replicas (``--notify-target A,B``), each a fake
merchant on 127.0.0.1:0: a replica that is down is passed over within the same attempt, the
attempts alternate between live replicas, and a FAIL is an answer (retried on the schedule, not
offered to the other replica at once). A bad entry in the list is refused at start."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.integration.wechat_mock.conftest import Launcher, Running
from tests.integration.wechat_mock.fakes import FakeMerchant, always
from tests.waiting import eventually
from wechat_mock.adapters.keys import PlatformKeys
from wechat_mock.domain.notifications import DeliveryStatus, Notification

#: A retry gap no test waits for: a notification delivered within a test was delivered by its
#: first attempt.
NEVER = (60.0,)


@pytest.fixture
async def other() -> AsyncIterator[FakeMerchant]:
    """A second replica of the merchant (``merchant`` is the first)."""
    fake = FakeMerchant()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def address(replica: FakeMerchant) -> str:
    assert replica.server is not None
    return replica.server.address


async def notifications(wechat: Running) -> list[Notification]:
    async with wechat.simulator.ctx.uow(readonly=True) as uow:
        return await uow.notifications.list()


async def all_settled(wechat: Running, count: int, status: DeliveryStatus) -> list[Notification]:
    """The ``count`` notifications once every one has that status (else an empty list)."""
    found = await notifications(wechat)
    ok = len(found) == count and all(n.status is status for n in found)
    return found if ok else []


@pytest.mark.parametrize("down", ["stopped", "answering UNAVAILABLE"])
async def test_a_replica_that_is_down_is_passed_over_so_each_notification_reaches_the_live_one_at_once(
    launch: Launcher, merchant: FakeMerchant, other: FakeMerchant, keys: PlatformKeys, down: str
) -> None:
    if down == "stopped":
        await other.stop()  # its port now refuses connections
    else:
        other.policy = always("UNAVAILABLE")
    wechat = await launch(notify_target=f"{address(other)},{address(merchant)}", notify_schedule=NEVER)
    numbers = [f"NR-{i:04d}" for i in range(4)]
    with capture_logs() as events:
        for number in numbers:
            await wechat.stubs.paid(number)
        delivered = await eventually(lambda: all_settled(wechat, 4, DeliveryStatus.DELIVERED))
    assert [n.attempts for n in delivered] == [1, 1, 1, 1]  # no wait for the schedule's 60 s
    received = sorted(item.plain(keys.apiv3_key)["out_trade_no"] for item in merchant.received)
    assert received == numbers  # each once, all to the live replica
    # Half the attempts started at the replica that is down (round robin) and went on from there.
    assert [item.answer for item in other.received] == ([] if down == "stopped" else ["UNAVAILABLE"] * 2)
    logged = [e for e in events if e["event"] == "notification_delivered"]
    assert {e["target"] for e in logged} == {address(merchant)}
    assert sum(1 for e in logged if e.get("skipped")) == 2
    assert all(address(other) in e["skipped"][0] for e in logged if e.get("skipped"))


async def test_with_every_replica_up_the_notifications_alternate_between_them(
    launch: Launcher, merchant: FakeMerchant, other: FakeMerchant
) -> None:
    wechat = await launch(notify_target=f"{address(merchant)},{address(other)}", notify_schedule=NEVER)
    for i in range(6):
        await wechat.stubs.paid(f"NS-{i:04d}")
    delivered = await eventually(lambda: all_settled(wechat, 6, DeliveryStatus.DELIVERED))
    assert {n.attempts for n in delivered} == {1}
    assert (len(merchant.received), len(other.received)) == (3, 3)


async def test_a_fail_from_a_live_replica_is_retried_on_the_schedule_not_sent_to_the_other_at_once(
    launch: Launcher, merchant: FakeMerchant, other: FakeMerchant
) -> None:
    gap_s = 0.5
    merchant.policy = always("FAIL")  # the first target: the first attempt starts there
    wechat = await launch(notify_target=f"{address(merchant)},{address(other)}", notify_schedule=(gap_s,))
    await wechat.stubs.paid("NF-0001")
    (record,) = await eventually(lambda: all_settled(wechat, 1, DeliveryStatus.DELIVERED))
    assert record.attempts == 2
    (refused,) = merchant.received
    (accepted,) = other.received
    assert (refused.answer, accepted.answer) == ("FAIL", "SUCCESS")
    # The other replica got it from the second attempt, after the schedule's gap — not at once.
    assert accepted.at - refused.at >= gap_s * 0.9


async def test_a_fail_is_recorded_with_the_replica_that_answered(
    launch: Launcher, merchant: FakeMerchant, other: FakeMerchant
) -> None:
    merchant.policy = always("FAIL")
    await other.stop()
    wechat = await launch(notify_target=f"{address(other)},{address(merchant)}", notify_schedule=NEVER)
    await wechat.stubs.paid("NF-0002")

    async def failed_once() -> list[Notification]:
        found = await notifications(wechat)
        return found if found and found[0].attempts == 1 else []

    (record,) = await eventually(failed_once)
    assert record.status is DeliveryStatus.PENDING
    assert record.last_error.startswith(f"{address(merchant)} answered FAIL")


def test_a_bad_notify_target_in_the_list_is_refused_at_start_naming_the_flag(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "wechat_mock",
            "--listen", "127.0.0.1:0",
            "--db", f"sqlite+aiosqlite:///{tmp_path / 'wechat.db'}",
            "--keys-dir", str(tmp_path / "keys"),
            "--notify-target", "127.0.0.1:50051,not-an-address",
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--notify-target: 'not-an-address' is not host:port" in done.stderr
    assert not (tmp_path / "wechat.db").exists() and not (tmp_path / "keys").exists()  # nothing started
