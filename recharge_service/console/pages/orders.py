"""Find an order, see everything about it on one screen, and resolve it.

- ``/orders?q=…``: FindOrders (order number, card number or WeChat transaction id); one hit opens
  the order. Without FindOrders on the recharge center, an order number still opens its order.
- ``/orders/{order_no}``: InspectOrder (the order, what the card system and WeChat Pay say now,
  each action's preview, a pending approval) and GetOrderTimeline. Without InspectOrder the order
  is read with GetRechargeOrder and the three actions are offered unchecked (the recharge center
  checks them when submitted); the page says what is not available.
- ``POST /orders/{order_no}/resolve``: ResolveAnomaly with the action and the reason; the result —
  or "waiting for a second approver" — is shown on the order page, whose timeline then has it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from protos.recharge.v1 import recharge_pb2
from rc_common.policy import WRITERS
from recharge_service.console.backend import CallFailed, Calls
from recharge_service.console.formatting import enum_key
from recharge_service.console.web import (
    action_name,
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
    status_name,
    visit_of,
)

routes = web.RouteTableDef()
ACTIONS = ("RETRY_NOW", "REFUND", "CONFIRM_CREDIT")
APPROVAL_REQUIRED = "APPROVAL_REQUIRED"
FIND_LIMIT = 50


@dataclass(frozen=True)
class ActionView:
    """One resolve action as the page offers it."""

    action: str
    checked: bool  # a preview from InspectOrder (else: offered, checked on submit)
    allowed: bool
    #: What it does, in the page's language; ``says``: the recharge center's own words for this
    #: order (English), shown under it.
    effect: str
    says: str
    refused_reason: str
    needs_approval: bool


@routes.get("/orders")
async def search(request: web.Request) -> web.StreamResponse:
    query = request.query.get("q", "").strip()
    merchant = request.query.get("merchant", "").strip()
    if not query:
        return render(
            request, "search.html", q="", merchant=merchant, orders=[], failure=None, fallback=False
        )
    calls = calls_of(request)
    try:
        reply = await calls.read(
            "FindOrders", recharge_pb2.FindOrdersRequest(query=query, merchant_id=merchant, limit=FIND_LIMIT)
        )
    except CallFailed as failed:
        if not failed.not_available:
            return render(
                request, "search.html", q=query, merchant=merchant, orders=[], failure=failed, fallback=False
            )
        return await _search_by_order_no(request, calls, query, merchant)
    orders = list(reply.orders)
    if len(orders) == 1:
        raise web.HTTPSeeOther(order_url(orders[0].order_no, orders[0].merchant_id))
    return render(
        request, "search.html", q=query, merchant=merchant, orders=orders, failure=None, fallback=False
    )


async def _search_by_order_no(
    request: web.Request, calls: Calls, query: str, merchant: str
) -> web.StreamResponse:
    """Before FindOrders: the query as an order number (GetOrderTimeline answers NOT_FOUND if none)."""
    try:
        await calls.read(
            "GetOrderTimeline", recharge_pb2.GetOrderTimelineRequest(order_no=query, merchant_id=merchant)
        )
    except CallFailed as failed:
        failure = None if failed.reason == "NOT_FOUND" else failed
        return render(
            request, "search.html", q=query, merchant=merchant, orders=[], failure=failure, fallback=True
        )
    raise web.HTTPSeeOther(order_url(query, merchant))


async def _order_without_inspect(calls: Calls, order_no: str, merchant: str) -> Any:
    """The order by GetRechargeOrder: with its merchant, or trying each merchant in turn."""
    if merchant:
        return await calls.order(order_no, merchant)
    merchants = await calls.read("ListMerchants", recharge_pb2.ListMerchantsRequest())
    for each in merchants.merchants:
        try:
            return await calls.order(order_no, each.merchant_id)
        except CallFailed as failed:
            if failed.reason != "NOT_FOUND":
                raise
    return None


def _actions(t: Any, inspect: Any) -> list[ActionView]:
    if inspect is None:
        return [ActionView(a, False, True, t.word("effect", a), "", "", False) for a in ACTIONS]
    views = []
    for preview in inspect.actions:
        action = action_name(preview.action)
        views.append(
            ActionView(
                action,
                True,
                preview.allowed,
                t.word("effect", action),
                preview.effect,
                preview.refused_reason,
                preview.needs_approval,
            )
        )
    return views


@routes.get("/orders/{order_no}")
async def order_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    order_no = request.match_info["order_no"]
    merchant = request.query.get("merchant", "").strip()
    calls = calls_of(request)
    inspect, inspect_failure, order, order_failure = None, None, None, None
    try:
        inspect = await calls.read(
            "InspectOrder", recharge_pb2.InspectOrderRequest(order_no=order_no, merchant_id=merchant)
        )
        order = inspect.order
        console.backend.remember_hold(int(inspect.hold_seconds))
    except CallFailed as failed:
        inspect_failure = failed
    if inspect_failure is not None and inspect_failure.reason == "NOT_FOUND":
        raise web.HTTPNotFound()
    if inspect is None:
        try:
            order = await _order_without_inspect(calls, order_no, merchant)
        except CallFailed as failed:
            order_failure = failed
    timeline, timeline_failure = [], None
    try:
        reply = await calls.read(
            "GetOrderTimeline", recharge_pb2.GetOrderTimelineRequest(order_no=order_no, merchant_id=merchant)
        )
        timeline = list(reply.events)
    except CallFailed as failed:
        if failed.reason == "NOT_FOUND" and order is None:
            raise web.HTTPNotFound() from None
        timeline_failure = failed
    hold = int(inspect.hold_seconds) if inspect is not None and inspect.hold_seconds else 0
    hold = hold or await console.backend.hold_seconds(calls)
    if inspect is not None:
        age = int(inspect.age_seconds)
    elif order is not None and order.updated_at.seconds:
        age = max(int(time.time()) - int(order.updated_at.seconds), 0)
    else:
        age = 0
    pending = (
        inspect.pending_approval if inspect is not None and inspect.pending_approval.approval_id else None
    )
    t = visit_of(request).t
    return render(
        request,
        "order.html",
        order_no=order_no,
        resolve_url=f"/orders/{quote(order_no, safe='')}/resolve",
        merchant=merchant or (order.merchant_id if order is not None else ""),
        order=order,
        status=status_name(order.status) if order is not None else "",
        channel=enum_key(recharge_pb2.Channel.Name(order.channel), "CHANNEL_") if order is not None else "",
        inspect=inspect,
        inspect_failure=inspect_failure,
        order_failure=order_failure,
        actions=_actions(t, inspect),
        pending=pending,
        timeline=timeline,
        timeline_failure=timeline_failure,
        age=age,
        hold=hold,
    )


@routes.post("/orders/{order_no}/resolve")
async def resolve(request: web.Request) -> web.StreamResponse:
    refused = require_role(request, WRITERS)
    if refused is not None:
        return refused
    order_no = request.match_info["order_no"]
    form = await request.post()
    action = str(form.get("action", ""))
    reason = str(form.get("reason", "")).strip()
    merchant = str(form.get("merchant", "")).strip()
    back = order_url(order_no, merchant)
    t = visit_of(request).t
    if action not in ACTIONS:
        raise web.HTTPBadRequest(text="unknown action")
    name = t.word("action", action)
    if not reason:
        flash(request, "error", t("reason_required"))
        return see_other(back)
    operator = operator_of(request)
    log.info("resolve_requested", order_no=order_no, action=action, subject=operator.subject)
    try:
        reply = await calls_of(request).act(
            "ResolveAnomaly",
            recharge_pb2.ResolveAnomalyRequest(
                order_no=order_no,
                action=recharge_pb2.ResolveAction.Value("RESOLVE_ACTION_" + action),
                reason=reason,
                merchant_id=merchant,
            ),
        )
    except CallFailed as failed:
        log.info(
            "resolve_refused",
            order_no=order_no,
            action=action,
            subject=operator.subject,
            reason=failed.reason,
        )
        flash_failure(request, failed, "action_refused", action=name)
        return see_other(back)
    if reply.outcome == APPROVAL_REQUIRED:
        flash(request, "wait", t("approval_required", action=name, id=reply.approval.approval_id))
    else:
        status = t.word("status", status_name(reply.order.status))
        flash(request, "ok", t("action_done", action=name, outcome=reply.outcome, status=status))
    log.info(
        "resolve_answered", order_no=order_no, action=action, subject=operator.subject, outcome=reply.outcome
    )
    return see_other(order_url(order_no, merchant or reply.order.merchant_id))
