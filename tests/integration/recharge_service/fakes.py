"""In-memory fakes of the recharge center's ports, scriptable per call, recording every call."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rc_common.outcomes import Done, Rejected, Unknown
from recharge_service.domain.order import RechargeOrder
from recharge_service.service_layer import call_log
from recharge_service.service_layer.ports import (
    CONFIRM_RECHARGE,
    CREATE_PREPAY,
    CREATE_REFUND,
    PRE_RECHARGE,
    RECHARGING,
    SUCCEEDED,
    VOIDED,
    CardRecharge,
    PaymentTransaction,
    RefundResult,
)

Outcome = Done[Any] | Rejected | Unknown


def made(method: str) -> None:
    """What a real adapter does as it makes a call: take the flow's announcement of it (its
    ``sent`` row is already committed), as ``adapters/retrying.py`` does."""
    log = call_log.current()
    if log is not None:
        log.take_announced(method)


@dataclass
class Clock:
    """The use cases' clock, moved by the test (hold windows, expiries, leases)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 4, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def unknown(code: str = "UNAVAILABLE") -> Unknown:
    return Unknown(code, "injected by the test", 1.0)


def refused(reason: str, code: str = "FAILED_PRECONDITION") -> Rejected:
    return Rejected(code, reason, "injected by the test", 1.0)


@dataclass
class FakeCard:
    """A card system whose answers can be scripted per method (a queue of outcomes), else a sane
    default that follows the card system's contract (fenced confirm/void)."""

    bonus_fen: int = 0
    calls: list[tuple[str, str]] = field(default_factory=list)
    scripted: dict[str, deque[Outcome]] = field(default_factory=dict)
    records: dict[str, CardRecharge] = field(default_factory=dict)
    confirm_gate: asyncio.Event | None = None

    def script(self, method: str, *outcomes: Outcome) -> None:
        self.scripted.setdefault(method, deque()).extend(outcomes)

    def _next(self, method: str) -> Outcome | None:
        queue = self.scripted.get(method)
        return queue.popleft() if queue else None

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]

    async def pre_recharge(self, order_no: str, card_no: str, pay_amount_fen: int) -> Outcome:
        self.calls.append(("PreRecharge", order_no))
        made(PRE_RECHARGE)
        scripted = self._next("PreRecharge")
        if scripted is not None:
            if isinstance(scripted, Done):  # a scripted success also records the pre-recharge
                self.records[order_no] = scripted.value
            return scripted
        record = self.records.setdefault(
            order_no,
            CardRecharge(order_no, RECHARGING, self.bonus_fen, pay_amount_fen + self.bonus_fen, 1),
        )
        return Done(record, 1.0)

    async def confirm_recharge(self, order_no: str) -> Outcome:
        self.calls.append(("ConfirmRecharge", order_no))
        made(CONFIRM_RECHARGE)
        if self.confirm_gate is not None:
            await self.confirm_gate.wait()
        scripted = self._next("ConfirmRecharge")
        if scripted is not None:
            return scripted
        record = self.records.get(order_no)
        if record is None:
            return refused("RECHARGE_NOT_FOUND", code="NOT_FOUND")
        if record.status == RECHARGING:
            record = self.records[order_no] = CardRecharge(
                order_no, SUCCEEDED, record.bonus_fen, record.credit_amount_fen, record.rule_version
            )
        return Done(record, 1.0)

    async def void_recharge(self, order_no: str, reason: str) -> Outcome:
        self.calls.append(("VoidRecharge", order_no))
        scripted = self._next("VoidRecharge")
        if scripted is not None:
            return scripted
        record = self.records.get(order_no, CardRecharge(order_no, RECHARGING))
        if record.status == RECHARGING:
            record = self.records[order_no] = CardRecharge(
                order_no, VOIDED, record.bonus_fen, record.credit_amount_fen, record.rule_version
            )
        return Done(record, 1.0)

    async def get_recharge(self, order_no: str) -> Outcome:
        self.calls.append(("GetRecharge", order_no))
        scripted = self._next("GetRecharge")
        if scripted is not None:
            return scripted
        record = self.records.get(order_no)
        return Done(record, 1.0) if record else refused("RECHARGE_NOT_FOUND", code="NOT_FOUND")


@dataclass
class FakePayments:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    scripted: dict[str, deque[Outcome]] = field(default_factory=dict)
    refund_status: str = "PROCESSING"
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def script(self, method: str, *outcomes: Outcome) -> None:
        self.scripted.setdefault(method, deque()).extend(outcomes)

    def _next(self, method: str) -> Outcome | None:
        queue = self.scripted.get(method)
        return queue.popleft() if queue else None

    def of(self, method: str) -> list[dict[str, Any]]:
        return [args for name, args in self.calls if name == method]

    async def create_prepay(
        self, out_trade_no: str, description: str, amount_total_fen: int, payer_openid: str, time_expire: str
    ) -> Outcome:
        made(CREATE_PREPAY)
        self.calls.append(
            (
                "CreatePrepay",
                {
                    "out_trade_no": out_trade_no,
                    "amount_total_fen": amount_total_fen,
                    "payer_openid": payer_openid,
                    "time_expire": time_expire,
                },
            )
        )
        return self._next("CreatePrepay") or Done(f"wx_prepay_{out_trade_no}", 1.0)

    async def query_order(self, out_trade_no: str) -> Outcome:
        self.calls.append(("QueryOrder", {"out_trade_no": out_trade_no}))
        return self._next("QueryOrder") or Done(PaymentTransaction(out_trade_no, "", "NOTPAY", 0), 1.0)

    async def close_order(self, out_trade_no: str) -> Outcome:
        self.calls.append(("CloseOrder", {"out_trade_no": out_trade_no}))
        return self._next("CloseOrder") or Done("CLOSED", 1.0)

    async def create_refund(
        self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int, reason: str
    ) -> Outcome:
        made(CREATE_REFUND)
        self.calls.append(
            (
                "CreateRefund",
                {
                    "out_trade_no": out_trade_no,
                    "out_refund_no": out_refund_no,
                    "refund_fen": refund_fen,
                    "total_fen": total_fen,
                },
            )
        )
        return self._next("CreateRefund") or Done(
            RefundResult(out_refund_no, f"refund-{next(self._ids)}", self.refund_status), 1.0
        )

    async def query_refund(self, order_no: str, out_refund_no: str) -> Outcome:
        self.calls.append(("QueryRefund", {"out_refund_no": out_refund_no}))
        return self._next("QueryRefund") or Done(
            RefundResult(out_refund_no, "refund-q", self.refund_status), 1.0
        )


@dataclass
class FakeNotices:
    sent: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)
    scripted: deque[Outcome] = field(default_factory=deque)

    async def send(
        self, openid: str, template_id: str, data: Mapping[str, str], idempotency_key: str
    ) -> Outcome:
        self.sent.append((openid, template_id, dict(data), idempotency_key))
        return self.scripted.popleft() if self.scripted else Done("msg-1", 1.0)


@dataclass
class FakeCallbacks:
    targets: dict[str, str] = field(default_factory=dict)
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    scripted: deque[Outcome] = field(default_factory=deque)

    def target_for(self, channel: str) -> str:
        return self.targets.get(channel, "")

    async def send(self, target: str, event_id: str, order: RechargeOrder) -> Outcome:
        self.sent.append((target, event_id, order.status.name))
        return self.scripted.popleft() if self.scripted else Done(None, 1.0)
