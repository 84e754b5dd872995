"""Per-key locks: one holder per key at a time, independent keys, nothing left behind."""

from __future__ import annotations

import asyncio

from card_service.service_layer.locks import KeyedLocks


async def test_callers_of_one_key_run_one_after_the_other() -> None:
    locks = KeyedLocks()
    inside = 0
    most = 0

    async def work() -> None:
        nonlocal inside, most
        async with locks.hold("card:1"):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(work() for _ in range(20)))
    assert most == 1
    assert len(locks) == 0


async def test_a_held_key_does_not_block_another_key() -> None:
    locks = KeyedLocks()
    async with locks.hold("card:1"):
        assert locks.held("card:1")
        async with locks.hold("card:2"):
            assert locks.held("card:2")
    assert not locks.held("card:1")
    assert len(locks) == 0


async def test_a_cancelled_waiter_leaves_no_lock_behind() -> None:
    locks = KeyedLocks()
    entered = asyncio.Event()

    async def waiter() -> None:
        entered.set()
        async with locks.hold("card:1"):
            raise AssertionError("never acquired while the holder keeps it")

    async with locks.hold("card:1"):
        task = asyncio.create_task(waiter())
        await entered.wait()
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert len(locks) == 0
