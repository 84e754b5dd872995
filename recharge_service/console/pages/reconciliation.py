"""The daily reconciliation: runs and differences of a business day, each linked to its order.

``/reconciliation?date=2026-11-30&merchant=…&category=…&page_token=…``: GetReconciliation.
``/reconciliation.csv?date=…``: every item of the day (all pages) as CSV, the same columns as
``python -m recharge_service.ops reconcile show DATE --csv`` (``ops_reconcile.items_csv``).
``POST /reconciliation/run``: RunReconciliation of the day (operators and approvers).
"""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web

from protos.recharge.v1 import recharge_pb2
from rc_common.business_day import business_date, parse_day
from rc_common.clock import utc_now
from rc_common.policy import WRITERS
from recharge_service.console.backend import CallFailed
from recharge_service.console.web import (
    calls_of,
    console_of,
    flash,
    flash_failure,
    render,
    require_role,
    see_other,
    url_with,
    visit_of,
)
from recharge_service.entrypoints.ops_reconcile import PAGE_SIZE, items_csv

routes = web.RouteTableDef()
CATEGORIES = (
    "PAID_NOT_SETTLED", "CREDITED_WITHOUT_PAYMENT", "REFUNDED_NOT_VOIDED", "CREDITED_AND_REFUNDED",
    "AMOUNT_MISMATCH", "BILL_WITHOUT_ORDER", "PAID_NOT_IN_BILL", "PENDING",
)  # fmt: skip


def _day(text: str) -> date | None:
    """The business day asked for; yesterday (+08:00) when none is; None when malformed."""
    if not text:
        return business_date(utc_now()) - timedelta(days=1)
    try:
        return parse_day(text)
    except ValueError:
        return None


@routes.get("/reconciliation")
async def reconciliation(request: web.Request) -> web.StreamResponse:
    day = _day(request.query.get("date", "").strip())
    merchant = request.query.get("merchant", "").strip()
    category = request.query.get("category", "")
    category = category if category in CATEGORIES else ""
    token = request.query.get("page_token", "")
    runs, items, next_token, failure = [], [], "", None
    if day is not None:
        try:
            reply = await calls_of(request).read(
                "GetReconciliation",
                recharge_pb2.GetReconciliationRequest(
                    date=day.isoformat(),
                    merchant_id=merchant,
                    categories=[category] if category else [],
                    page=recharge_pb2.PageRequest(
                        page_size=console_of(request).settings.page_size, page_token=token
                    ),
                ),
            )
            runs, items, next_token = list(reply.runs), list(reply.items), reply.next_page_token
        except CallFailed as failed:
            failure = failed
    return render(
        request,
        "reconciliation.html",
        day=day.isoformat() if day is not None else request.query.get("date", ""),
        bad_date=day is None,
        merchant=merchant,
        category=category,
        categories=CATEGORIES,
        runs=runs,
        items=items,
        next_token=next_token,
        first_page=not token,
        failure=failure,
        csv_url=url_with(request, page_token=None).replace("/reconciliation", "/reconciliation.csv", 1),
    )


@routes.get("/reconciliation.csv")
async def reconciliation_csv(request: web.Request) -> web.StreamResponse:
    day = _day(request.query.get("date", "").strip())
    if day is None:
        raise web.HTTPBadRequest(text=visit_of(request).t("bad_date"))
    category = request.query.get("category", "")
    calls = calls_of(request)
    items: list[recharge_pb2.ReconciliationItem] = []
    token = ""
    try:
        while True:
            reply = await calls.read(
                "GetReconciliation",
                recharge_pb2.GetReconciliationRequest(
                    date=day.isoformat(),
                    merchant_id=request.query.get("merchant", "").strip(),
                    categories=[category] if category in CATEGORIES else [],
                    page=recharge_pb2.PageRequest(page_size=PAGE_SIZE, page_token=token),
                ),
            )
            items += reply.items
            token = reply.next_page_token
            if not token:
                break
    except CallFailed as failed:
        flash_failure(request, failed)
        return see_other(f"/reconciliation?date={day.isoformat()}")
    return web.Response(
        text=items_csv(items) + "\n",
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="reconciliation-{day.isoformat()}.csv"'},
    )


@routes.post("/reconciliation/run")
async def run(request: web.Request) -> web.StreamResponse:
    refused = require_role(request, WRITERS)
    if refused is not None:
        return refused
    form = await request.post()
    day = _day(str(form.get("date", "")).strip())
    t = visit_of(request).t
    if day is None:
        flash(request, "error", t("bad_date"))
        return see_other("/reconciliation")
    merchant = str(form.get("merchant", "")).strip()
    back = f"/reconciliation?date={day.isoformat()}" + (f"&merchant={merchant}" if merchant else "")
    try:
        reply = await calls_of(request).reconcile(
            recharge_pb2.RunReconciliationRequest(date=day.isoformat(), merchant_id=merchant)
        )
    except CallFailed as failed:
        flash_failure(request, failed)
        return see_other(back)
    differences = sum(r.differences for r in reply.runs)
    flash(request, "ok", t("recon_done", date=day.isoformat(), runs=len(reply.runs), differences=differences))
    return see_other(back)
