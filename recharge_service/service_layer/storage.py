"""What the use cases know of storage besides the unit of work itself: its errors, the pages and
rows it hands back, and the page tokens. Adapters implement the port with these; the use cases
never import an adapter or a database library."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rc_common import page_tokens
from recharge_service.domain.approval import Approval
from recharge_service.domain.order import RechargeOrder
from recharge_service.domain.timeline import TimelineEntry


class StorageError(Exception):
    """The database failed (or is unreachable): nothing of the unit of work was written."""


class DuplicateKey(StorageError):
    """A unique key (an idempotency key, an order number) is taken: nothing was written."""


class StaleOrder(Exception):
    """Another writer changed the order since it was read; re-read and decide again."""


class StaleApproval(Exception):
    """The approval was decided by somebody else since it was read; re-read it."""


@dataclass(frozen=True)
class OrderPage:
    orders: list[RechargeOrder]
    next_page_token: str


@dataclass(frozen=True)
class AnomalyPage:
    orders: list[RechargeOrder]
    next_page_token: str


@dataclass(frozen=True)
class ApprovalPage:
    approvals: list[Approval]
    next_page_token: str


@dataclass(frozen=True)
class OutboxRow:
    """A follow-up claimed for delivery."""

    id: int
    order_no: str
    topic: str
    event_id: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class Settled:
    """What became of one claimed follow-up (``Outbox.finish`` writes it)."""

    row_id: int
    status: str  # pending | delivered | skipped | dead
    attempts: int
    next_attempt_at: datetime
    last_error: str
    entry: TimelineEntry


# -- page tokens (codec: rc_common/page_tokens.py); each list says what its position is ---


def order_page_token(before_order_no: str) -> str:
    return page_tokens.make("before", [before_order_no])


def read_order_page_token(token: str) -> str:
    """The order number to continue below (ListRechargeOrders, newest first)."""
    return page_tokens.read("before", token, 1)[0]


def anomaly_page_token(updated_at: datetime, order_no: str) -> str:
    return page_tokens.make("after", [updated_at.isoformat(), order_no])


def read_anomaly_page_token(token: str) -> tuple[datetime, str]:
    """The position to continue after (ListAnomalies, oldest change first)."""
    moment, order_no = page_tokens.read("after", token, 2)
    try:
        at = datetime.fromisoformat(moment)
    except ValueError as exc:
        raise ValueError("not a page token of this list") from exc
    if at.tzinfo is None:
        raise ValueError("not a page token of this list")
    return at, order_no


def approval_page_token(requested_at: datetime, approval_id: str) -> str:
    return page_tokens.make("approvals_before", [requested_at.isoformat(), approval_id])


def read_approval_page_token(token: str) -> tuple[datetime, str]:
    """The position to continue below (ListApprovals, newest first)."""
    moment, approval_id = page_tokens.read("approvals_before", token, 2)
    try:
        at = datetime.fromisoformat(moment)
    except ValueError as exc:
        raise ValueError("not a page token of this list") from exc
    if at.tzinfo is None:
        raise ValueError("not a page token of this list")
    return at, approval_id


class Claimed(str):
    """An order number claimed, with the fencing token the claim got (``token``)."""

    token: int

    def __new__(cls, order_no: str, token: int) -> Claimed:
        claimed = super().__new__(cls, order_no)
        claimed.token = token
        return claimed


class StagedClaim:
    """A lease claim staged with a unit of work: ``token`` is the fencing token once the unit
    committed, None when someone else held the order (or before the commit)."""

    token: int | None = None
