"""Timeline entries: every state change, remote attempt, follow-up delivery and operator action."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Kinds of timeline entries (``recharge.v1.TimelineEvent.kind``).
TRANSITION = "transition"
REMOTE_CALL = "remote_call"
OUTBOX_DELIVERY = "outbox_delivery"
OPERATOR_ACTION = "operator_action"
SENTINEL_VISIT = "sentinel_visit"
NOTIFICATION = "notification"


@dataclass(frozen=True)
class TimelineEntry:
    """One row of an order's history. ``seq`` (the row's id) and ``node`` (the replica that wrote
    it, its ``--node-id``) are set by the store when the row is written; what a flow builds leaves
    them empty."""

    order_no: str
    at: datetime
    kind: str
    from_status: int = 0
    to_status: int = 0
    method: str = ""
    outcome: str = ""
    latency_ms: int = 0
    error: str = ""
    actor: str = "system"
    detail: str = ""
    seq: int = 0
    node: str = ""
