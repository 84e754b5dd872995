"""DecideApproval: the second operator of four eyes approves or rejects a pending approval.

Who: an approver (the policy table lets only that role call) who is not the one who asked
(PERMISSION_DENIED ``SAME_OPERATOR``); nobody at all is PERMISSION_DENIED ``OPERATOR_REQUIRED``.

Both decisions take the order's lease first (busy: UNAVAILABLE ``ORDER_BUSY``, try again) and read
the approval again under it, so two deciders — or a decision and a run of the action — never
overlap:

- approve: the action runs through ``resolve.act_holding`` — the same fenced path as an operator's
  REFUND (void first, never a refund on an unknown void), the approver as the operator on the
  timeline, the detail naming the requester. Its result is stored with the decision (APPROVED,
  ``outcome``). When the order is no longer refundable (the sentinel credited it meanwhile …), the
  refund path's own refusal is the outcome (``refused CARD_CREDITED: …``), still APPROVED: this
  version never marks an approval EXPIRED. When the action's outcome is not decided (UNAVAILABLE:
  the void's answer unknown, the lease lost), nothing is stored: the approval stays PENDING and the
  caller sees the UNAVAILABLE (decide again later).
- reject: REJECTED; nothing runs.

Each decision is an ``operator_action`` row (``approval_approved`` / ``approval_rejected``) written
with it. A decided approval is FAILED_PRECONDITION ``APPROVAL_DECIDED``, except the same decision
by the same person again, which answers what was stored (a replay).
"""

from __future__ import annotations

from dataclasses import dataclass

from rc_common.errors import NotFound, PermissionDenied, Refused
from recharge_service.domain.approval import Approval
from recharge_service.domain.order import RechargeOrder
from recharge_service.domain.timeline import OPERATOR_ACTION, TimelineEntry
from recharge_service.service_layer.commands import DecideApproval, ResolveAction
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.holding import OrderLease
from recharge_service.service_layer.orders import load_order
from recharge_service.service_layer.resolve import act_holding, operator_lease
from recharge_service.service_layer.sentinel import SentinelPolicy
from recharge_service.service_layer.storage import StaleApproval


@dataclass(frozen=True)
class Decided:
    approval: Approval
    order: RechargeOrder


async def decide_approval(deps: Deps, policy: SentinelPolicy, command: DecideApproval) -> Decided:
    approval_id, approve, decider, reason = command.validated()
    approval = await _load(deps, approval_id)
    if approval.requested_by == decider:
        raise PermissionDenied(
            "SAME_OPERATOR",
            f"approval {approval_id} was asked for by {decider}: another operator must decide it",
            approval_id=approval_id,
        )
    if not approval.pending:
        return await _replayed(deps, approval, approve, decider)
    async with operator_lease(deps, policy, approval.order_no) as lease:
        approval = await _load(deps, approval_id)  # decided while we waited for the lease?
        if not approval.pending:
            return await _replayed(deps, approval, approve, decider)
        outcome = await _run(deps, policy, lease, approval, decider, reason) if approve else ""
        return await _store(deps, approval, approve, decider, reason, outcome)


async def _run(
    deps: Deps, policy: SentinelPolicy, lease: OrderLease, approval: Approval, decider: str, reason: str
) -> str:
    """Run the approved action; what it did, or the refusal it ended with."""
    requester = approval.requested_by
    detail = f"approval {approval.approval_id} asked by {requester} ({approval.request_reason}): {reason}"
    why = f"{decider} approving {requester}: {approval.request_reason}"
    action = ResolveAction[approval.action]
    try:
        resolution = await act_holding(deps, policy, lease, action, decider, detail, why)
    except Refused as exc:
        return f"refused {exc.reason}: {exc.message}"
    return resolution.outcome


async def _store(
    deps: Deps, approval: Approval, approve: bool, decider: str, reason: str, outcome: str
) -> Decided:
    now = deps.clock()
    approval.decide(approve, decider, reason, now, outcome)
    said = f"approval {approval.approval_id} asked by {approval.requested_by}: {reason}"
    entry = TimelineEntry(
        approval.order_no, now, OPERATOR_ACTION, method=approval.action,
        outcome=f"approval_{approval.status.value.lower()}", actor=decider,
        detail=f"{said} -> {outcome}" if outcome else said,
    )  # fmt: skip
    async with deps.uow() as uow:
        uow.approvals.save_decision(approval, [entry])
        try:
            await uow.commit()
        except StaleApproval:  # decided by somebody else after all (a lease lost in between)
            return await _replayed(deps, await _load(deps, approval.approval_id), approve, decider)
    return Decided(approval, await load_order(deps, approval.order_no))


async def _replayed(deps: Deps, approval: Approval, approve: bool, decider: str) -> Decided:
    """A decided approval: the stored result for the same decision by the same person again;
    otherwise APPROVAL_DECIDED."""
    if not approval.settled_as(approve, decider):
        raise Refused(
            "APPROVAL_DECIDED",
            f"approval {approval.approval_id} is already {approval.status.value}"
            + (f" by {approval.decided_by}" if approval.decided_by else ""),
            approval_id=approval.approval_id,
        )
    return Decided(approval, await load_order(deps, approval.order_no))


async def _load(deps: Deps, approval_id: str) -> Approval:
    async with deps.uow(readonly=True) as uow:
        approval = await uow.approvals.get(approval_id)
    if approval is None:
        raise NotFound(f"no approval {approval_id!r}")
    return approval
