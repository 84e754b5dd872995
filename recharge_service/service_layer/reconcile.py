"""The daily three-way reconciliation: read WeChat's trade bill, our orders and the card journal of
one business day (+08:00) per merchant, match them (``domain.reconciliation``), and store the run
with its items, replacing an earlier run of the same (day, merchant).

No transaction is open while a side is read: the three sides are read first (each a remote call or
a read-only query), then the run is written in one short transaction. A side that cannot be read
(unknown outcome, refusal) makes the run FAILED with the reason, its items empty; the next run (or
an operator's re-run) tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from rc_common import page_tokens, validation
from rc_common.business_day import business_date, day_bounds, parse_day
from rc_common.clock import utc_now
from rc_common.errors import InvalidArgument, NotFound
from rc_common.logs import get_logger
from recharge_service.domain.merchant import MerchantConfig, WechatAccount, check_merchant_id
from recharge_service.domain.reconciliation import (
    BillPayment,
    BillRefund,
    CardCredit,
    Category,
    DaySides,
    Item,
    OrderView,
    counts,
    reconcile,
)
from recharge_service.service_layer.merchants import MerchantDirectory
from recharge_service.service_layer.reconcile_metrics import record_reconciliation

log = get_logger("reconcile")

COMPLETED, FAILED = "COMPLETED", "FAILED"
DEFAULT_PAGE_SIZE = 100
CATEGORY_NAMES = frozenset(c.value for c in Category)


class SideUnavailable(Exception):
    """A side could not be read (the call's outcome was unknown or refused)."""

    def __init__(self, side: str, reason: str) -> None:
        super().__init__(f"{side}: {reason}")
        self.side = side
        self.reason = reason


@dataclass(frozen=True)
class Bill:
    payments: list[BillPayment]
    refunds: list[BillRefund]

    @property
    def rows(self) -> int:
        return len(self.payments) + len(self.refunds)


class Sides(Protocol):
    """The two remote sides (adapters: gRPC clients of the simulators or the real systems)."""

    async def trade_bill(self, account: WechatAccount, day: str) -> Bill:
        """The merchant's trade bill of ``day``; SideUnavailable when it cannot be had."""
        ...

    async def card_credits(self, day: str, merchant_id: str) -> list[CardCredit]:
        """Recharge credits (principal and bonus) of the merchant's cards on ``day``."""
        ...

    async def recharge_status(self, order_no: str, merchant_id: str) -> str:
        """The pre-recharge's status (RECHARGING / SUCCEEDED / VOIDED), "" when there is none."""
        ...


@dataclass(frozen=True)
class RunRecord:
    day: str
    merchant_id: str
    status: str
    detail: str
    started_at: datetime
    finished_at: datetime
    counts: dict[str, int]
    bill_rows: int
    orders: int
    journal_entries: int
    actor: str

    @property
    def differences(self) -> int:
        return sum(n for name, n in self.counts.items() if name != Category.PENDING.value)

    @property
    def pending(self) -> int:
        return self.counts.get(Category.PENDING.value, 0)


@dataclass(frozen=True)
class StoredItem:
    id: int
    day: str
    merchant_id: str
    item: Item


class Store(Protocol):
    """Our side and the stored runs (adapter: ``adapters/reconciliation.py``)."""

    async def orders_paid_between(
        self, merchant_id: str, start: datetime, end: datetime
    ) -> list[OrderView]: ...
    async def orders(self, merchant_id: str, order_nos: Sequence[str]) -> list[OrderView]: ...
    async def replace_run(self, run: RunRecord, items: Sequence[Item]) -> None:
        """Store the run and its items, replacing those of the same (day, merchant), atomically."""
        ...

    async def runs(self, day: str, merchant_id: str) -> list[RunRecord]: ...
    async def items(
        self, day: str, merchant_id: str, categories: Sequence[str], after_id: int, limit: int
    ) -> list[StoredItem]: ...


@dataclass(frozen=True)
class ReconciliationPage:
    runs: list[RunRecord]
    items: list[StoredItem]
    next_page_token: str


@dataclass
class Reconciler:
    store: Store
    sides: Sides
    merchants: MerchantDirectory
    #: Orders changed more recently than this are pending (the sentinel's hold window).
    hold: timedelta
    clock: Callable[[], datetime] = utc_now
    #: One run at a time per process (the daily job and operators share it).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _now(self) -> datetime:
        return self.clock()

    async def run(self, day_text: str, merchant_id: str = "", actor: str = "system") -> list[RunRecord]:
        """Reconcile ``day_text`` for one merchant, or every merchant; one stored run each."""
        day = _day(day_text)
        merchants = await self._merchants(merchant_id)
        async with self.lock:
            return [await self._run_one(day, m, actor) for m in merchants]

    async def _merchants(self, merchant_id: str) -> list[MerchantConfig]:
        if merchant_id:
            check_merchant_id(merchant_id)
            config = await self.merchants.current(merchant_id)
            if config is None:
                raise NotFound(f"no merchant {merchant_id}")
            return [config]
        return sorted(await self.merchants.all(), key=lambda m: m.merchant_id)

    async def _run_one(self, day: date, merchant: MerchantConfig, actor: str) -> RunRecord:
        day_text = day.isoformat()
        started = self._now()
        try:
            sides, journal_entries, bill_rows = await self._gather(day, merchant)
        except SideUnavailable as exc:
            run = RunRecord(day_text, merchant.merchant_id, FAILED, str(exc), started, self._now(),
                            {}, 0, 0, 0, actor)  # fmt: skip
            await self.store.replace_run(run, [])
            log.warning(
                "reconciliation_failed", day=day_text, merchant_id=merchant.merchant_id, reason=str(exc)
            )
            return run
        items = reconcile(sides, self._now(), self.hold)
        found = counts(items)
        run = RunRecord(day_text, merchant.merchant_id, COMPLETED, "", started, self._now(), found,
                        bill_rows, len(sides.orders), journal_entries, actor)  # fmt: skip
        await self.store.replace_run(run, items)
        record_reconciliation(day_text, merchant.merchant_id, found)
        log.info("reconciliation_done", day=day_text, merchant_id=merchant.merchant_id,
                 differences=run.differences, pending=run.pending)  # fmt: skip
        return run

    async def _gather(self, day: date, merchant: MerchantConfig) -> tuple[DaySides, int, int]:
        start, end = day_bounds(day)
        mid = merchant.merchant_id
        bill = await self.sides.trade_bill(merchant.wechat, day.isoformat())
        credits = await self.sides.card_credits(day.isoformat(), mid)
        late = await self.sides.card_credits((day + timedelta(days=1)).isoformat(), mid)
        paid = await self.store.orders_paid_between(mid, start, end)
        known = {o.order_no for o in paid}
        named = {p.out_trade_no for p in bill.payments} | {r.out_trade_no for r in bill.refunds}
        named |= {c.order_no for c in credits}
        others = await self.store.orders(mid, sorted(named - known))
        orders = {o.order_no: o for o in [*paid, *others]}
        refunded = {r.out_trade_no for r in bill.refunds if r.status == "SUCCESS"}
        refunded |= {o.order_no for o in orders.values() if o.status == "REFUNDED"}
        statuses = {no: await self.sides.recharge_status(no, mid) for no in sorted(refunded & set(orders))}
        sides = DaySides(start, end, bill.payments, bill.refunds, orders, credits, statuses, late)
        return sides, len(credits), bill.rows

    async def get(
        self, day_text: str, merchant_id: str = "", categories: Sequence[str] = (),
        page_size: int = 0, page_token: str = "",
    ) -> ReconciliationPage:  # fmt: skip
        """The stored runs of the day (one merchant's or all) and a page of their items."""
        day = _day(day_text).isoformat()
        if merchant_id:
            check_merchant_id(merchant_id)
        wanted = sorted(set(categories))
        unknown = [c[:40] for c in wanted if c not in CATEGORY_NAMES]
        if unknown:
            raise InvalidArgument("categories", f"unknown: {', '.join(unknown[:3])}")
        limit = validation.page_size("page.page_size", page_size, DEFAULT_PAGE_SIZE)
        after = _after(page_token, day, merchant_id, wanted)
        runs = await self.store.runs(day, merchant_id)
        rows = await self.store.items(day, merchant_id, wanted, after, limit + 1)
        page = rows[:limit]
        token = ""
        if len(rows) > limit:
            token = page_tokens.make("reconciliation", [day, merchant_id, ",".join(wanted), str(page[-1].id)])
        return ReconciliationPage(runs, page, token)


def _day(text: str) -> date:
    try:
        return parse_day(text)
    except ValueError as exc:
        raise InvalidArgument("date", str(exc)) from exc


def _after(token: str, day: str, merchant_id: str, categories: list[str]) -> int:
    if not token:
        return 0
    try:
        *scope, after = page_tokens.read("reconciliation", token, 4)
        if scope != [day, merchant_id, ",".join(categories)]:
            raise ValueError("another query's token")
        return page_tokens.read_position(after)
    except ValueError:
        raise InvalidArgument("page.page_token", "not a token from a previous page") from None


def previous_business_day(now: datetime) -> str:
    """Yesterday in +08:00: what the daily job reconciles."""
    return (business_date(now) - timedelta(days=1)).isoformat()
