"""Four eyes: the approvals a refund above the threshold waits in, and their decisions.

``/approvals?status=PENDING&merchant=…&page_token=…``: ListApprovals. An approver who did not ask
sees Approve and Reject (each with a required reason) on a pending one; the requester sees that
another approver decides. ``POST /approvals/{id}/decide``: DecideApproval; the recharge center
refuses a decider who is the requester (SAME_OPERATOR) or no approver, and the page says so. The
result is shown on the order's page, whose timeline has the refund that ran.
"""

from __future__ import annotations

from aiohttp import web

from protos.recharge.v1 import recharge_pb2
from rc_common.auth import APPROVER
from recharge_service.console.backend import CallFailed
from recharge_service.console.web import (
    calls_of,
    console_of,
    flash,
    flash_failure,
    log,
    operator_of,
    order_url,
    render,
    require_role,
    see_other,
    visit_of,
)

routes = web.RouteTableDef()
STATUSES = ("PENDING", "APPROVED", "REJECTED", "EXPIRED")


@routes.get("/approvals")
async def approvals(request: web.Request) -> web.StreamResponse:
    status = request.query.get("status", "PENDING")
    status = status if status in (*STATUSES, "ALL") else "PENDING"
    merchant = request.query.get("merchant", "").strip()
    token = request.query.get("page_token", "")
    rows, next_token, failure = [], "", None
    try:
        reply = await calls_of(request).read(
            "ListApprovals",
            recharge_pb2.ListApprovalsRequest(
                statuses=list(STATUSES) if status == "ALL" else [status],
                merchant_id=merchant,
                page=recharge_pb2.PageRequest(
                    page_size=console_of(request).settings.page_size, page_token=token
                ),
            ),
        )
        rows, next_token = list(reply.approvals), reply.next_page_token
    except CallFailed as failed:
        failure = failed
    return render(
        request,
        "approvals.html",
        rows=rows,
        next_token=next_token,
        first_page=not token,
        failure=failure,
        statuses=(*STATUSES, "ALL"),
        status=status,
        merchant=merchant,
    )


@routes.post("/approvals/{approval_id}/decide")
async def decide(request: web.Request) -> web.StreamResponse:
    refused = require_role(request, (APPROVER,))
    if refused is not None:
        return refused
    approval_id = request.match_info["approval_id"]
    form = await request.post()
    decision = str(form.get("decision", ""))
    reason = str(form.get("reason", "")).strip()
    t = visit_of(request).t
    if decision not in ("approve", "reject"):
        raise web.HTTPBadRequest(text="decision: approve or reject")
    if not reason:
        flash(request, "error", t("reason_required"))
        return see_other("/approvals")
    subject = operator_of(request).subject
    log.info("approval_decision_sent", approval_id=approval_id, decision=decision, subject=subject)
    try:
        reply = await calls_of(request).act(
            "DecideApproval",
            recharge_pb2.DecideApprovalRequest(
                approval_id=approval_id, approve=decision == "approve", reason=reason
            ),
        )
    except CallFailed as failed:
        log.info("approval_decision_refused", approval_id=approval_id, subject=subject, reason=failed.reason)
        label = t("approve") if decision == "approve" else t("reject")
        flash_failure(request, failed, "action_refused", action=label)
        return see_other("/approvals")
    approval = reply.approval
    flash(
        request,
        "ok" if approval.status != "REJECTED" else "wait",
        t(
            "approval_decided",
            id=approval.approval_id,
            status=t.word("approval", approval.status),
            outcome=approval.outcome,
        ),
    )
    return see_other(order_url(approval.order_no, approval.merchant_id or reply.order.merchant_id))
