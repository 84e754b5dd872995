"""Command validation names the field; background work is tracked, deduplicated and cancellable."""

from __future__ import annotations

import asyncio

import pytest

from rc_common.errors import InvalidArgument
from recharge_service.domain.order import Channel
from recharge_service.service_layer.background import BackgroundTasks
from recharge_service.service_layer.commands import CreateRechargeOrder

GOOD = {
    "card_no": "8800000000000001",
    "pay_amount_fen": 1,
    "channel": 2,
    "idempotency_key": "k",
    "payer_openid": "o",
    "merchant_id": "shop-a",
}


def test_a_good_command_validates_to_typed_values() -> None:
    assert CreateRechargeOrder(**GOOD).validated() == ("8800000000000001", 1, Channel.POS, "k", "o")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("card_no", "8800 0000 0000"),
        ("card_no", "1234567"),
        ("pay_amount_fen", 0),
        ("channel", 0),
        ("idempotency_key", ""),
        ("idempotency_key", "x" * 65),
        ("payer_openid", ""),
        ("merchant_id", ""),
        ("merchant_id", "shop a"),
        ("merchant_id", "m" * 33),
    ],
)
def test_each_bad_field_is_named(field: str, value: object) -> None:
    with pytest.raises(InvalidArgument) as error:
        CreateRechargeOrder(**{**GOOD, field: value}).validated()  # type: ignore[arg-type]
    assert error.value.field == field


async def test_one_task_per_key_and_close_cancels_what_is_left() -> None:
    tasks = BackgroundTasks()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    assert tasks.spawn("credit:R1", slow)
    assert not tasks.spawn("credit:R1", slow)
    await started.wait()
    assert tasks.running("credit:R1")
    await tasks.close(grace=0.01)
    assert cancelled.is_set()
    assert not tasks.spawn("credit:R2", slow)  # closed: no new work


async def test_a_failing_task_does_not_escape() -> None:
    tasks = BackgroundTasks()

    async def boom() -> None:
        raise RuntimeError("boom")

    tasks.spawn("x", boom)
    await tasks.join()
    assert not tasks.running("x")
    assert tasks.spawn("x", boom)  # the key is free again
    await tasks.join()
