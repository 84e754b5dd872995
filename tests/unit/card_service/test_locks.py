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


async def test_a_free_key_is_taken_without_waiting_on_the_event_loop() -> None:
    locks = KeyedLocks()
    hold = locks.hold("card:1")
    entering = hold.__aenter__()
    try:
        entering.send(None)  # runs to completion in one step: no future awaited, no yield
    except StopIteration:
        pass
    else:
        raise AssertionError("taking a free key suspended the caller")
    assert locks.held("card:1")
    await hold.__aexit__(None, None, None)
    assert len(locks) == 0


async def test_waiters_get_the_key_in_the_order_they_came() -> None:
    locks = KeyedLocks()
    order: list[int] = []

    async def waiter(index: int) -> None:
        async with locks.hold("card:1"):
            order.append(index)
            await asyncio.sleep(0)

    async with locks.hold("card:1"):
        tasks = [asyncio.create_task(waiter(index)) for index in range(5)]
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert len(locks) == 0


async def test_a_waiter_cancelled_just_after_being_handed_the_key_passes_it_on() -> None:
    locks = KeyedLocks()
    got: list[str] = []

    async def waiter(name: str) -> None:
        async with locks.hold("card:1"):
            got.append(name)

    first = asyncio.create_task(waiter("first"))
    second = asyncio.create_task(waiter("second"))
    async with locks.hold("card:1"):
        await asyncio.sleep(0)  # both now wait, first in front
    first.cancel()  # the key was just handed to it, before it could run
    await asyncio.gather(first, second, return_exceptions=True)
    assert first.cancelled() and got == ["second"]
    assert len(locks) == 0
