"""Helpers for the sentinel's and operators' tests: a clock the test moves, orders in each state."""

from __future__ import annotations

from datetime import timedelta

from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.domain.timeline import TimelineEntry
from recharge_service.service_layer import confirm
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.payment import record_payment
from recharge_service.service_layer.ports import PaymentTransaction
from recharge_service.service_layer.sentinel import SentinelPolicy
from recharge_service.settings import SentinelSettings
from tests.integration.recharge_service.conftest import new_order, reload
from tests.integration.recharge_service.fakes import FakeCard, unknown

S = OrderStatus
HOLD = timedelta(minutes=60)
EXPIRY = timedelta(minutes=30)  # the test merchant's order_expiry (fakes.merchant())


def policy(owner: str = "node-a", **changes: object) -> SentinelPolicy:
    """The sentinel's policy from its settings (hold: one hour), with ``changes`` to them."""
    values: dict[str, object] = {"hold": HOLD.total_seconds()}
    values.update(changes)
    return SentinelPolicy.from_settings(SentinelSettings(**values), owner)  # type: ignore[arg-type]


def payment_of(order: RechargeOrder) -> PaymentTransaction:
    return PaymentTransaction(
        order.order_no,
        f"4200{order.order_no[-10:]}",
        "SUCCESS",
        order.pay_amount_fen,
        "2026-11-26T12:00:05+08:00",
    )


async def paid_order(deps: Deps) -> RechargeOrder:
    order = await new_order(deps)
    await record_payment(deps, payment_of(order), source="test")
    return await reload(deps, order.order_no)


async def credit_unknown_order(deps: Deps, card: FakeCard) -> RechargeOrder:
    """Paid; the notify path's confirm got no answer (the card system still says RECHARGING)."""
    order = await paid_order(deps)
    card.script("ConfirmRecharge", unknown("DEADLINE_EXCEEDED"))
    ended = await confirm.credit(deps, order.order_no)
    assert ended.status is S.CREDIT_UNKNOWN
    return ended


async def timeline(deps: Deps, order_no: str, kind: str = "") -> list[TimelineEntry]:
    async with deps.uow(readonly=True) as uow:
        entries = await uow.timeline.for_order(order_no)
    return [e for e in entries if not kind or e.kind == kind]


async def lease_of(deps: Deps, order_no: str) -> str | None:
    async with deps.uow(readonly=True) as uow:
        return await uow.leases.holder(order_no)
