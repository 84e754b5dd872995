"""Four eyes' store: the approvals table, reads now and writes staged on the unit of work.

- ``add_if_absent``: ``INSERT … ON CONFLICT (order_no, action) WHERE status = 'PENDING' DO NOTHING``
  on the partial unique index, so two operators asking at once make one PENDING approval; the
  ``approval_requested`` timeline row is written in the same statement group only when the row was
  inserted (a repeat writes nothing).
- ``save_decision``: ``UPDATE … WHERE approval_id = :id AND status = 'PENDING'``; when somebody
  decided first it raises ``StaleApproval`` inside the unit (nothing of the unit is written).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update
from sqlalchemy.engine import RowMapping

from rc_common.db import Database
from rc_common.sql import insert_or_ignore
from recharge_service.adapters.orm import PENDING_ONLY, approvals
from recharge_service.adapters.repository import Staged, insert_timeline, read
from recharge_service.domain.approval import Approval, ApprovalStatus
from recharge_service.domain.timeline import TimelineEntry
from recharge_service.service_layer.storage import (
    ApprovalPage,
    StaleApproval,
    approval_page_token,
    read_approval_page_token,
)

A = approvals.c
_FIELDS = (
    "approval_id", "order_no", "merchant_id", "action", "amount_fen", "requested_by",
    "request_reason", "requested_at", "decided_by", "decision_reason", "decided_at", "outcome",
)  # fmt: skip
_DECIDE = update(approvals).where(
    and_(A.approval_id == bindparam("b_approval_id"), A.status == ApprovalStatus.PENDING.value)
)


def approval_from_row(row: RowMapping) -> Approval:
    values: dict[str, Any] = {name: row[name] for name in _FIELDS}
    return Approval(status=ApprovalStatus(row["status"]), **values)


def _values(approval: Approval) -> dict[str, Any]:
    values = {name: getattr(approval, name) for name in _FIELDS}
    values["status"] = approval.status.value
    return values


class ApprovalsRepository:
    def __init__(self, db: Database, staged: Staged) -> None:
        self._db = db
        self._staged = staged

    async def get(self, approval_id: str) -> Approval | None:
        query = select(approvals).where(A.approval_id == approval_id)
        row = await read(self._db, lambda conn: conn.execute(query).mappings().first())
        return approval_from_row(row) if row else None

    async def pending_for(self, order_no: str, action: str) -> Approval | None:
        query = select(approvals).where(
            A.order_no == order_no, A.action == action, A.status == ApprovalStatus.PENDING.value
        )
        row = await read(self._db, lambda conn: conn.execute(query).mappings().first())
        return approval_from_row(row) if row else None

    def add_if_absent(self, approval: Approval, entry: TimelineEntry) -> None:
        """Stage the PENDING approval and its timeline row, unless the order already has a
        PENDING one for the action (then the unit writes neither)."""
        row = _values(approval)
        node = self._staged.node

        def op(conn: Connection) -> None:
            if insert_or_ignore(conn, approvals, [row], ["order_no", "action"], where=PENDING_ONLY):
                insert_timeline(conn, [entry], node)

        self._staged.add(op)

    def save_decision(self, approval: Approval, entries: Sequence[TimelineEntry] = ()) -> None:
        """Stage the decision of a PENDING approval (``StaleApproval`` at commit if it was decided
        meanwhile) with its timeline rows."""
        values = {**_values(approval), "b_approval_id": approval.approval_id}

        def op(conn: Connection) -> None:
            if conn.execute(_DECIDE, values).rowcount != 1:
                raise StaleApproval(approval.approval_id)

        self._staged.add(op)
        for entry in entries:
            self._staged.note(entry)

    async def page(
        self,
        *,
        statuses: Sequence[ApprovalStatus],
        merchant_id: str = "",
        page_size: int = 50,
        page_token: str = "",
    ) -> ApprovalPage:
        """Newest request first, paged by (requested_at, approval_id)."""
        query = select(approvals).where(A.status.in_([s.value for s in statuses]))
        if merchant_id:
            query = query.where(A.merchant_id == merchant_id)
        if page_token:
            before_at, before_id = read_approval_page_token(page_token)
            query = query.where(
                or_(A.requested_at < before_at, and_(A.requested_at == before_at, A.approval_id < before_id))
            )
        query = query.order_by(A.requested_at.desc(), A.approval_id.desc()).limit(page_size + 1)
        rows = await read(self._db, lambda conn: conn.execute(query).mappings().all())
        found = [approval_from_row(row) for row in rows[:page_size]]
        token = ""
        if len(rows) > page_size:
            token = approval_page_token(found[-1].requested_at, found[-1].approval_id)
        return ApprovalPage(found, token)

    async def count(self, status: ApprovalStatus) -> int:
        query = select(func.count()).where(A.status == status.value)
        return int(await read(self._db, lambda conn: conn.execute(query).scalar_one()))
