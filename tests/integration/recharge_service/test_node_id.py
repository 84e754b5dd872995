"""Which replica wrote each timeline row, on SQLite: two replicas' units of work on one database,
each stamping its own ``--node-id`` on every row it writes (the flow's own rows and the outbox
dispatcher's delivery rows alike)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rc_common.db import Database
from recharge_service.adapters.unit_of_work import uow_factory
from recharge_service.domain.timeline import OUTBOX_DELIVERY
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.dispatch import dispatch_once
from tests.integration.recharge_service.conftest import MCHID
from tests.integration.recharge_service.fakes import (
    FakeCallbacks,
    FakeCard,
    FakeNotices,
    FakePayments,
    MemoryMerchants,
)
from tests.integration.recharge_service.test_outbox import NO_BACKOFF, credited_order


@pytest.fixture
async def replicas(
    db: Database, card: FakeCard, payments: FakePayments, merchants: MemoryMerchants
) -> AsyncIterator[tuple[Deps, Deps]]:
    built = tuple(
        Deps(uow_factory(db, node=node), card, payments, merchants, sp_mchid=MCHID) for node in ("n1", "n2")
    )
    yield built[0], built[1]
    for deps in built:
        await deps.background.close(5.0)


async def test_each_row_names_the_replica_whose_unit_wrote_it(replicas: tuple[Deps, Deps]) -> None:
    first, second = replicas
    order_no = await credited_order(first)
    assert await dispatch_once(second, FakeNotices(), FakeCallbacks(), NO_BACKOFF) == 2

    async with first.uow(readonly=True) as uow:
        entries = await uow.timeline.for_order(order_no)
    by_node = {(e.kind == OUTBOX_DELIVERY, e.node) for e in entries}
    assert by_node == {(False, "n1"), (True, "n2")}
