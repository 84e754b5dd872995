"""The in-memory unit of work keeps the port's promises (the ones the use-case tests lean on)."""

from __future__ import annotations

import pytest

from recharge_service.adapters.repository import StaleOrder
from recharge_service.domain import events
from recharge_service.domain.order import OrderStatus
from recharge_service.domain.timeline import NOTIFICATION, REMOTE_CALL, TimelineEntry
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.orders import flow
from tests.integration.recharge_service.fakes import MERCHANT
from tests.unit.recharge_service.conftest import new_order, paid_order, reload
from tests.unit.recharge_service.fake_uow import MemoryStore

S = OrderStatus


async def test_a_stale_save_fails_the_whole_unit_and_leaves_the_order_as_read(
    deps: Deps, store: MemoryStore
) -> None:
    order = await new_order(deps)
    async with deps.uow() as slow, deps.uow() as fast:
        mine = await slow.orders.get(order.order_no)
        theirs = await fast.orders.get(order.order_no)
        assert mine is not None and theirs is not None
        theirs.note_undecided("QueryOrder UNAVAILABLE")
        await fast.orders.save(theirs)
        await fast.commit()

        mine.transition(S.CLOSED, deps.clock(), detail="expired")
        slow.payments.add_if_absent("4200x", order.order_no, 1, "", deps.clock())
        await slow.timeline.add(TimelineEntry(order.order_no, deps.clock(), NOTIFICATION, outcome="x"))
        await slow.orders.save(mine)
        with pytest.raises(StaleOrder):
            await slow.commit()
    assert (mine.version, len(mine.changes), len(mine.events)) == (theirs.version - 1, 1, 1)  # not saved
    stored = await reload(deps, order.order_no)
    assert (stored.status, stored.attempts) == (S.AWAITING_PAYMENT, 1)
    async with deps.uow(readonly=True) as uow:
        assert await uow.payments.for_order(order.order_no) == []
        assert [e for e in await uow.timeline.for_order(order.order_no) if e.kind == NOTIFICATION] == []
        assert await uow.outbox.for_order(order.order_no) == []


async def test_remote_attempts_left_pending_ride_first_in_the_next_commit_even_after_a_failed_one(
    deps: Deps, store: MemoryStore
) -> None:
    order = await paid_order(deps)
    answer = TimelineEntry(order.order_no, deps.clock(), REMOTE_CALL, method="/x/Y", outcome="done")
    async with flow(deps) as log:
        log.pending.append(answer)
        async with deps.uow() as uow:
            stale = await uow.orders.get(order.order_no)
            assert stale is not None
            stale.version -= 1
            await uow.orders.save(stale)
            with pytest.raises(StaleOrder):
                await uow.commit()
        assert log.pending == [answer]  # put back for the next commit
        async with deps.uow() as uow:
            await uow.timeline.add(TimelineEntry(order.order_no, deps.clock(), NOTIFICATION, outcome="n"))
            await uow.commit()
        assert log.pending == []
    async with deps.uow(readonly=True) as uow:
        entries = await uow.timeline.for_order(order.order_no)
    assert [(e.kind, e.outcome) for e in entries[-2:]] == [(REMOTE_CALL, "done"), (NOTIFICATION, "n")]
    assert entries[-2].seq < entries[-1].seq


async def test_each_replica_stamps_its_node_on_the_timeline_rows_it_writes(
    deps: Deps, store: MemoryStore
) -> None:
    order = await new_order(deps)
    for node in ("n1", "n2"):
        async with store.uow_factory(node=node)() as uow:
            await uow.timeline.add(TimelineEntry(order.order_no, deps.clock(), NOTIFICATION, outcome=node))
            await uow.commit()
    async with deps.uow(readonly=True) as uow:
        entries = await uow.timeline.for_order(order.order_no)
    assert [(e.outcome, e.node) for e in entries if e.kind == NOTIFICATION] == [("n1", "n1"), ("n2", "n2")]


async def test_a_unit_left_without_commit_writes_nothing_and_a_read_only_one_cannot_commit(
    deps: Deps, store: MemoryStore
) -> None:
    order = await new_order(deps)
    units = store.units
    async with deps.uow() as uow:
        read = await uow.orders.get(order.order_no)
        assert read is not None
        read.note_undecided("changed in memory only")
        await uow.orders.save(read)
    async with deps.uow(readonly=True) as uow:
        with pytest.raises(RuntimeError):
            await uow.commit()
    assert store.units == units
    assert (await reload(deps, order.order_no)).attempts == 0


async def test_orders_list_pages_newest_first(deps: Deps) -> None:
    made = [(await new_order(deps, key=f"key-{n}")).order_no for n in range(3)]
    async with deps.uow(readonly=True) as uow:
        first = await uow.orders.list(merchant_id=MERCHANT, page_size=2)
        second = await uow.orders.list(merchant_id=MERCHANT, page_size=2, page_token=first.next_page_token)
        awaiting = await uow.orders.list(
            merchant_id=MERCHANT, statuses=[S.AWAITING_PAYMENT], card_no="0000000000"
        )
        others = await uow.orders.list(merchant_id="shop-b")
    listed = [o.order_no for o in first.orders + second.orders]
    assert listed == sorted(made, reverse=True)
    assert second.next_page_token == ""
    assert awaiting.orders == []
    assert others.orders == []  # another merchant's list never shows them


async def test_a_committed_save_bumps_the_version_and_writes_each_change_and_followup_once(
    deps: Deps,
) -> None:
    order = await paid_order(deps)
    async with deps.uow() as uow:
        read = await uow.orders.get(order.order_no)
        assert read is not None
        read.transition(S.CREDITED, deps.clock(), detail="confirmed")
        read.events.append(events.for_status(read.order_no, S.CREDITED))  # the same follow-ups again
        await uow.orders.save(read)
        await uow.commit()
    assert (read.version, read.changes, read.events) == (order.version + 1, [], [])
    async with deps.uow() as uow:  # the same object saved again carries nothing twice
        read.note_undecided("late")
        await uow.orders.save(read)
        await uow.commit()
    assert (await reload(deps, order.order_no)).version == order.version + 2
    async with deps.uow(readonly=True) as uow:
        credited = [e for e in await uow.timeline.for_order(order.order_no) if e.to_status == S.CREDITED]
        queued = [row["event_id"] for row in await uow.outbox.for_order(order.order_no)]
    assert len(credited) == 1
    assert queued == [f"{order.order_no}.credited.notice", f"{order.order_no}.credited.callback"]
