"""In-memory fakes of the recharge center's ports, scriptable per call, recording every call."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rc_common.outcomes import Done, Rejected, Unknown
from recharge_service.domain.merchant import MerchantConfig, WechatAccount, WechatMode
from recharge_service.domain.order import Channel, RechargeOrder
from recharge_service.service_layer import call_log
from recharge_service.service_layer.merchants import MerchantChange, StaleMerchant
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

#: The provider's sp_mchid in tests, and the default test merchant (partner mode).
SP_MCHID = "1900000109"
MERCHANT = "shop-a"
SUB_MCHID = "1900000201"


def merchant(merchant_id: str = MERCHANT, **changes: Any) -> MerchantConfig:
    """A valid partner-mode merchant selling through every channel (``changes`` override)."""
    config = MerchantConfig(
        merchant_id=merchant_id,
        display_name=f"Shop {merchant_id}",
        channels=frozenset(Channel),
        order_expiry=timedelta(minutes=30),
        wechat=WechatAccount(WechatMode.PARTNER, SUB_MCHID, "wx1111111111111111"),
    )
    return replace(config, **changes).checked()


@dataclass
class MemoryMerchants:
    """An in-memory ``MerchantDirectory`` (versions kept, optimistic concurrency like SQL)."""

    versions: dict[str, list[MerchantChange]] = field(default_factory=dict)

    @classmethod
    def of(cls, *configs: MerchantConfig) -> MemoryMerchants:
        directory = cls()
        for config in configs or (merchant(),):
            directory.add(config)
        return directory

    def add(self, config: MerchantConfig, at: datetime | None = None) -> MerchantConfig:
        """Write ``config`` as the merchant's next version, whatever the current one is."""
        history = self.versions.setdefault(config.merchant_id, [])
        at = at or datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
        written = replace(config.checked(), version=len(history) + 1, updated_at=at)
        history.append(MerchantChange(written, "test", "fixture", at))
        return written

    async def current(self, merchant_id: str) -> MerchantConfig | None:
        history = self.versions.get(merchant_id)
        return history[-1].config if history else None

    async def version(self, merchant_id: str, version: int) -> MerchantConfig | None:
        history = self.versions.get(merchant_id, [])
        return history[version - 1].config if 0 < version <= len(history) else None

    async def put(
        self, config: MerchantConfig, expected_version: int, operator: str, reason: str, at: datetime
    ) -> MerchantConfig:
        history = self.versions.setdefault(config.merchant_id, [])
        if expected_version != len(history):
            raise StaleMerchant(config.merchant_id, expected_version, len(history))
        written = replace(config, version=len(history) + 1, updated_at=at)
        history.append(MerchantChange(written, operator, reason, at))
        return written

    async def history(self, merchant_id: str) -> list[MerchantChange]:
        return list(self.versions.get(merchant_id, []))

    async def all(self) -> list[MerchantConfig]:
        return [self.versions[m][-1].config for m in sorted(self.versions) if self.versions[m]]


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
    #: card_no -> the merchant whose card it is (a card not listed is every merchant's).
    owners: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    #: order_no -> the merchant the pre-recharge was made for.
    merchants: dict[str, str] = field(default_factory=dict)
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

    async def pre_recharge(
        self, order_no: str, card_no: str, pay_amount_fen: int, merchant_id: str
    ) -> Outcome:
        self.calls.append(("PreRecharge", order_no))
        made(PRE_RECHARGE)
        self.merchants.setdefault(order_no, merchant_id)
        scripted = self._next("PreRecharge")
        if scripted is not None:
            if isinstance(scripted, Done):  # a scripted success also records the pre-recharge
                self.records[order_no] = scripted.value
            return scripted
        if self.owners.get(card_no, merchant_id) != merchant_id:  # like a card that does not exist
            return refused("CARD_NOT_FOUND")
        record = self.records.setdefault(
            order_no,
            CardRecharge(order_no, RECHARGING, self.bonus_fen, pay_amount_fen + self.bonus_fen, 1),
        )
        return Done(record, 1.0)

    def _foreign(self, order_no: str, merchant_id: str) -> bool:
        """A call naming another merchant than the pre-recharge's (the card system: NOT_FOUND)."""
        return self.merchants.get(order_no, merchant_id) != merchant_id

    async def confirm_recharge(self, order_no: str, merchant_id: str) -> Outcome:
        self.calls.append(("ConfirmRecharge", order_no))
        made(CONFIRM_RECHARGE)
        if self.confirm_gate is not None:
            await self.confirm_gate.wait()
        scripted = self._next("ConfirmRecharge")
        if scripted is not None:
            return scripted
        record = self.records.get(order_no)
        if record is None or self._foreign(order_no, merchant_id):
            return refused("RECHARGE_NOT_FOUND", code="NOT_FOUND")
        if record.status == RECHARGING:
            record = self.records[order_no] = CardRecharge(
                order_no, SUCCEEDED, record.bonus_fen, record.credit_amount_fen, record.rule_version
            )
        return Done(record, 1.0)

    async def void_recharge(self, order_no: str, reason: str, merchant_id: str) -> Outcome:
        self.calls.append(("VoidRecharge", order_no))
        scripted = self._next("VoidRecharge")
        if scripted is not None:
            return scripted
        if self._foreign(order_no, merchant_id):
            return refused("RECHARGE_NOT_FOUND", code="NOT_FOUND")
        self.merchants.setdefault(order_no, merchant_id)  # a tombstone is the merchant's
        record = self.records.get(order_no, CardRecharge(order_no, RECHARGING))
        if record.status == RECHARGING:
            record = self.records[order_no] = CardRecharge(
                order_no, VOIDED, record.bonus_fen, record.credit_amount_fen, record.rule_version
            )
        return Done(record, 1.0)

    async def get_recharge(self, order_no: str, merchant_id: str) -> Outcome:
        self.calls.append(("GetRecharge", order_no))
        scripted = self._next("GetRecharge")
        if scripted is not None:
            return scripted
        record = self.records.get(order_no)
        if record is None or self._foreign(order_no, merchant_id):
            return refused("RECHARGE_NOT_FOUND", code="NOT_FOUND")
        return Done(record, 1.0)


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
        self,
        account: WechatAccount,
        out_trade_no: str,
        description: str,
        amount_total_fen: int,
        payer_openid: str,
        time_expire: str,
    ) -> Outcome:
        made(CREATE_PREPAY)
        self.calls.append(
            (
                "CreatePrepay",
                {
                    "account": account,
                    "out_trade_no": out_trade_no,
                    "amount_total_fen": amount_total_fen,
                    "payer_openid": payer_openid,
                    "time_expire": time_expire,
                },
            )
        )
        return self._next("CreatePrepay") or Done(f"wx_prepay_{out_trade_no}", 1.0)

    async def query_order(self, account: WechatAccount, out_trade_no: str) -> Outcome:
        self.calls.append(("QueryOrder", {"account": account, "out_trade_no": out_trade_no}))
        return self._next("QueryOrder") or Done(PaymentTransaction(out_trade_no, "", "NOTPAY", 0), 1.0)

    async def close_order(self, account: WechatAccount, out_trade_no: str) -> Outcome:
        self.calls.append(("CloseOrder", {"account": account, "out_trade_no": out_trade_no}))
        return self._next("CloseOrder") or Done("CLOSED", 1.0)

    async def create_refund(
        self,
        account: WechatAccount,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str,
    ) -> Outcome:
        made(CREATE_REFUND)
        self.calls.append(
            (
                "CreateRefund",
                {
                    "account": account,
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

    async def query_refund(self, account: WechatAccount, order_no: str, out_refund_no: str) -> Outcome:
        self.calls.append(("QueryRefund", {"account": account, "out_refund_no": out_refund_no}))
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
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    scripted: deque[Outcome] = field(default_factory=deque)

    async def send(self, target: str, event_id: str, order: RechargeOrder) -> Outcome:
        self.sent.append((target, event_id, order.status.name))
        return self.scripted.popleft() if self.scripted else Done(None, 1.0)
