"""The operators' console's answers as ``recharge.v1`` messages: approvals, InspectOrder, health."""

from __future__ import annotations

from datetime import timedelta

from protos.recharge.v1 import recharge_pb2
from rc_common.timestamps import to_timestamp
from recharge_service.adapters.messages import order_to_proto
from recharge_service.domain.approval import Approval
from recharge_service.service_layer.commands import ResolveAction
from recharge_service.service_layer.inspection import ActionPreview, Inspection, RemoteView
from recharge_service.service_layer.ops_health import OpsHealth


def seconds(span: timedelta) -> int:
    return int(span / timedelta(seconds=1))


def approval_to_proto(approval: Approval) -> recharge_pb2.Approval:
    return recharge_pb2.Approval(
        approval_id=approval.approval_id,
        order_no=approval.order_no,
        merchant_id=approval.merchant_id,
        action=int(ResolveAction[approval.action]),  # type: ignore[arg-type]  # same numbers
        amount_fen=approval.amount_fen,
        status=approval.status.value,
        requested_by=approval.requested_by,
        request_reason=approval.request_reason,
        requested_at=to_timestamp(approval.requested_at),
        decided_by=approval.decided_by,
        decision_reason=approval.decision_reason,
        decided_at=to_timestamp(approval.decided_at),
        outcome=approval.outcome,
    )


def view_to_proto(view: RemoteView) -> recharge_pb2.RemoteView:
    return recharge_pb2.RemoteView(
        outcome=view.outcome,
        state=view.state,
        detail=view.detail,
        amount_fen=view.amount_fen,
        asked_at=to_timestamp(view.asked_at),
    )


def preview_to_proto(preview: ActionPreview) -> recharge_pb2.ActionPreview:
    return recharge_pb2.ActionPreview(
        action=int(preview.action),  # type: ignore[arg-type]  # same numbers as recharge.v1.ResolveAction
        allowed=preview.allowed,
        effect=preview.effect,
        refused_reason=preview.refused_reason,
        needs_approval=preview.needs_approval,
    )


def inspection_to_proto(found: Inspection) -> recharge_pb2.InspectOrderResponse:
    pending = found.pending_approval
    return recharge_pb2.InspectOrderResponse(
        order=order_to_proto(found.order),
        card=view_to_proto(found.card),
        wechat_trade=view_to_proto(found.trade),
        wechat_refund=view_to_proto(found.refund),
        actions=[preview_to_proto(p) for p in found.actions],
        pending_approval=approval_to_proto(pending) if pending is not None else None,
        age_seconds=seconds(found.age),
        hold_seconds=seconds(found.hold),
    )


def health_to_proto(health: OpsHealth) -> recharge_pb2.OpsHealth:
    figures = health.figures
    answer = recharge_pb2.OpsHealth(
        node_id=health.node,
        systems=[
            recharge_pb2.SystemHealth(name=s.name, status=s.status, latency_ms=s.latency_ms, detail=s.detail)
            for s in health.systems
        ],
        sentinel_runs=[
            recharge_pb2.SentinelRunSummary(
                finished_at=to_timestamp(run.finished_at),
                report=recharge_pb2.SentinelReport(**run.report.as_dict()),
                node_id=run.node,
            )
            for run in health.sentinel_runs
        ],
        hold_seconds=seconds(health.hold),
        pending_approvals=health.pending_approvals,
    )
    if figures is not None:
        answer.orders_by_status.update(figures.orders_by_status)
        answer.oldest_unfinished_order_age_seconds = int(figures.oldest_unfinished_age_s)
        answer.oldest_manual_review_age_seconds = int(figures.oldest_review_age_s)
        answer.outbox_backlog = figures.outbox_backlog
        answer.outbox_oldest_age_seconds = int(figures.outbox_oldest_age_s)
    return answer
