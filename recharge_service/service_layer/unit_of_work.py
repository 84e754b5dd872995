"""The unit of work port: one atomic write, rolled back unless committed.

    async with deps.uow() as uow:
        order = await uow.orders.get(order_no)      # reads answer at once
        order.transition(...)
        await uow.orders.save(order)               # writes are staged …
        await uow.commit()                         # … and applied together, or not at all

Reads see committed data; staged writes carry their own guards (``save`` checks the version it
read and raises ``StaleOrder`` at commit when somebody changed the order meanwhile). A commit also
writes the remote attempts its flow left pending (``call_log``), first, and then runs the
staged writes' follow-ups (versions bumped, announced calls noted). Never hold a unit open across a
call to another system: persist the intent, commit, call out, record the outcome in a new unit.

``adapters/unit_of_work.py`` implements it over SQL (SQLite or PostgreSQL); tests use an
in-memory one. Each adapter only provides ``_apply``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from recharge_service.domain.approval import Approval, ApprovalStatus
from recharge_service.domain.order import Channel, OrderStatus, RechargeOrder
from recharge_service.domain.timeline import TimelineEntry
from recharge_service.service_layer import call_log
from recharge_service.service_layer.limits import OpenOrders
from recharge_service.service_layer.storage import (
    AnomalyPage,
    ApprovalPage,
    Claimed,
    OrderPage,
    OutboxRow,
    Settled,
    StagedClaim,
)


class Orders(Protocol):
    async def get(self, order_no: str) -> RechargeOrder | None: ...
    async def get_by_idempotency_key(self, merchant_id: str, key: str) -> RechargeOrder | None: ...
    async def count_open(self, merchant_id: str) -> int:
        """The merchant's orders still waiting for payment (CREATED, AWAITING_PAYMENT)."""
        ...
    async def count_open_for(self, merchant_id: str, card_no: str, payer_openid: str) -> OpenOrders:
        """The merchant's orders waiting for payment on ``card_no`` and of ``payer_openid``."""
        ...
    async def add(self, order: RechargeOrder, *, actor: str = "system", detail: str = "") -> None: ...
    async def save(self, order: RechargeOrder) -> None: ...
    async def list(
        self,
        *,
        merchant_id: str,
        card_no: str = "",
        statuses: Sequence[OrderStatus] = (),
        channel: Channel | None = None,
        page_size: int = 50,
        page_token: str = "",
    ) -> OrderPage: ...
    async def find(self, query: str, *, merchant_id: str = "", limit: int = 20) -> Sequence[RechargeOrder]:
        """Orders whose order number, card number or transaction id is exactly ``query``, newest
        first; of ``merchant_id`` only when given."""
        ...


class Payments(Protocol):
    """``add_if_absent`` is staged (plain method: a decision may call it while it decides)."""

    async def exists(self, transaction_id: str) -> bool: ...
    def add_if_absent(
        self,
        transaction_id: str,
        order_no: str,
        amount_total_fen: int,
        success_time: str,
        recorded_at: datetime,
    ) -> None: ...
    async def for_order(self, order_no: str) -> list[dict[str, Any]]: ...


class TimelineRows(Protocol):
    def stage(self, entry: TimelineEntry, after: Callable[[], None] | None = None) -> None: ...
    async def add(self, entry: TimelineEntry, *, after: Callable[[], None] | None = None) -> None: ...
    async def for_order(self, order_no: str) -> list[TimelineEntry]: ...


class Outbox(Protocol):
    """``claim`` and ``finish`` are writes of their own, done at once (not staged)."""

    async def claim(
        self, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[OutboxRow]: ...
    async def finish(self, owner: str, settled: Sequence[Settled]) -> list[int]: ...
    async def for_order(self, order_no: str) -> list[dict[str, Any]]: ...


class Leases(Protocol):
    """``claim_batch``, ``claim_one`` and ``renew`` are writes of their own, done at once (their
    answer is needed); ``release``/``release_all`` are staged with the unit of work."""

    async def claim_batch(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        *,
        statuses: Sequence[OrderStatus],
        only_expired: Sequence[OrderStatus] = (),
        changed_before: datetime | None = None,
        visited_before: datetime | None = None,
        limit: int = 500,
        at_once: Sequence[OrderStatus] = (),
        left: Sequence[OrderStatus] = (),
        left_before: datetime | None = None,
    ) -> list[Claimed]: ...
    async def claim_one(self, order_no: str, owner: str, now: datetime, until: datetime) -> int | None:
        """The fencing token of the lease taken, or None when someone holds the order."""
        ...

    async def renew(
        self, order_no: str, owner: str, now: datetime, until: datetime, token: int | None = None
    ) -> bool: ...
    def stage_claim(self, order_no: str, owner: str, now: datetime, until: datetime) -> StagedClaim:
        """Claim the order with the unit of work (when it is free then); see ``StagedClaim``."""
        ...

    async def now(self, fallback: datetime) -> datetime:
        """The time on the leases' clock (the database's in service; ``fallback`` otherwise)."""
        ...

    async def release(self, order_no: str, owner: str, now: datetime) -> None: ...
    async def release_all(self, order_nos: Sequence[str], owner: str, now: datetime) -> None: ...
    async def holder(self, order_no: str) -> str | None: ...


class Anomalies(Protocol):
    async def page(
        self,
        *,
        statuses: Sequence[OrderStatus],
        old_statuses: Sequence[OrderStatus] = (),
        old_before: datetime | None = None,
        changed_before: datetime | None = None,
        merchant_id: str = "",
        page_size: int = 50,
        page_token: str = "",
    ) -> AnomalyPage: ...


class Approvals(Protocol):
    """Four eyes (``adapters/approvals.py``): reads at once, ``add_if_absent`` and
    ``save_decision`` staged (plain methods)."""

    async def get(self, approval_id: str) -> Approval | None: ...
    async def pending_for(self, order_no: str, action: str) -> Approval | None: ...
    def add_if_absent(self, approval: Approval, entry: TimelineEntry) -> None:
        """The PENDING approval and its timeline row, unless one is PENDING for the order and
        action already (then neither is written)."""
        ...

    def save_decision(self, approval: Approval, entries: Sequence[TimelineEntry] = ()) -> None:
        """The decision of a PENDING approval; ``StaleApproval`` at commit when it was decided
        meanwhile."""
        ...

    async def page(
        self,
        *,
        statuses: Sequence[ApprovalStatus],
        merchant_id: str = "",
        page_size: int = 50,
        page_token: str = "",
    ) -> ApprovalPage: ...
    async def count(self, status: ApprovalStatus) -> int: ...


class AbstractUnitOfWork(abc.ABC):
    orders: Orders
    payments: Payments
    timeline: TimelineRows
    outbox: Outbox
    leases: Leases
    anomalies: Anomalies
    approvals: Approvals

    def __init__(self, *, readonly: bool = False) -> None:
        self.readonly = readonly

    async def __aenter__(self) -> Self:
        self._begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._discard()  # what was not committed is dropped

    async def commit(self) -> None:
        """Apply the staged writes (and the flow's pending attempts) atomically."""
        if self.readonly:
            raise RuntimeError("a read-only unit of work cannot commit")
        log = call_log.current()
        pending = log.take_pending() if log is not None else []
        try:
            after = await self._apply(pending)
        except BaseException:
            if log is not None:
                log.put_back(pending)
            raise
        for done in after:
            done()

    def announce(self, order_no: str, method: str, at: datetime, actor: str, detail: str) -> None:
        """Stage the ``sent`` row of a call the flow makes right after this commit."""
        log = call_log.current()
        if log is None:
            return  # outside a flow the retry helper writes its own sent row

        def noted() -> None:
            log.announced[method] += 1
            log.order_no = order_no

        self._stage_entry(call_log.sent_entry(order_no, method, at, actor, detail), noted)

    @abc.abstractmethod
    def _begin(self) -> None: ...

    @abc.abstractmethod
    def _discard(self) -> None: ...

    @abc.abstractmethod
    def _stage_entry(self, entry: TimelineEntry, after: Callable[[], None]) -> None: ...

    @abc.abstractmethod
    async def _apply(self, pending: list[TimelineEntry]) -> list[Callable[[], None]]:
        """Write ``pending`` then the staged writes in one transaction; return the after-commit
        hooks. Raise (writing nothing) when any guard fails."""


UowFactory = Callable[..., AbstractUnitOfWork]
