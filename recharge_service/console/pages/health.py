"""The health page: GetOpsHealth — the systems the recharge center calls, the sentinel's latest
runs, orders by status, the oldest unfinished order, the outbox backlog (the metrics' figures)."""

from __future__ import annotations

from aiohttp import web

from protos.recharge.v1 import recharge_pb2
from recharge_service.console.backend import CallFailed
from recharge_service.console.web import calls_of, console_of, render

routes = web.RouteTableDef()
#: Order statuses in the order of the flow.
STATUS_ORDER = (
    "CREATED", "AWAITING_PAYMENT", "PAID", "CREDIT_UNKNOWN", "CREDITED", "REFUNDING", "REFUNDED",
    "CLOSED", "REJECTED", "MANUAL_REVIEW",
)  # fmt: skip


@routes.get("/health")
async def health(request: web.Request) -> web.StreamResponse:
    figures, failure = None, None
    try:
        figures = await calls_of(request).read("GetOpsHealth", recharge_pb2.GetOpsHealthRequest())
        console_of(request).backend.remember_hold(int(figures.hold_seconds))
    except CallFailed as failed:
        failure = failed
    by_status: list[tuple[str, int]] = []
    if figures is not None:
        counts = {
            key.removeprefix("ORDER_STATUS_"): int(value) for key, value in figures.orders_by_status.items()
        }
        by_status = [(s, counts.pop(s, 0)) for s in STATUS_ORDER] + sorted(counts.items())
    return render(request, "health.html", figures=figures, failure=failure, by_status=by_status)
