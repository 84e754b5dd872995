"""The anomalies page: ListAnomalies, filtered, sorted and paged by the query string.

``?status=MANUAL_REVIEW&min_age=10&merchant=teahouse&sort=age&dir=desc&page=2``: the filters go to
the recharge center; the rows it returns (at most ``--list-limit``, oldest change first) are sorted
and cut into pages here, so a sort covers every row, not one page. Each age is compared with the
hold window: past it, the sentinel should already have acted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from protos.recharge.v1 import recharge_pb2
from recharge_service.console.backend import CallFailed
from recharge_service.console.formatting import enum_key
from recharge_service.console.web import calls_of, console_of, render

routes = web.RouteTableDef()
#: The statuses the filter offers ("" = the recharge center's default set).
STATUSES = ("MANUAL_REVIEW", "CREDIT_UNKNOWN", "REFUNDING", "PAID", "AWAITING_PAYMENT", "CREATED")
RPC_PAGE = 500


@dataclass(frozen=True)
class Row:
    order_no: str
    merchant_id: str
    status: str
    age_seconds: int
    attempts: int
    last_error: str
    reason: str
    pay_amount_fen: int
    card_no: str

    @classmethod
    def of(cls, anomaly: Any) -> Row:
        order = anomaly.order
        # The reason often repeats the last error: show it once.
        last_error = "" if anomaly.last_error and anomaly.last_error in anomaly.reason else anomaly.last_error
        return cls(
            order.order_no,
            order.merchant_id,
            enum_key(recharge_pb2.OrderStatus.Name(order.status), "ORDER_STATUS_"),
            int(anomaly.age_seconds),
            int(anomaly.attempts),
            last_error,
            anomaly.reason,
            int(order.pay_amount_fen),
            order.card_no,
        )


SORTS: dict[str, Callable[[Row], Any]] = {
    "age": lambda r: (r.age_seconds, r.order_no),
    "status": lambda r: (r.status, -r.age_seconds),
    "attempts": lambda r: (r.attempts, r.age_seconds),
    "merchant": lambda r: (r.merchant_id, -r.age_seconds),
    "amount": lambda r: (r.pay_amount_fen, r.age_seconds),
    "order_no": lambda r: r.order_no,
}


def _int(text: str, default: int, lowest: int = 0) -> int:
    try:
        return max(int(text), lowest)
    except ValueError:
        return default


@routes.get("/anomalies")
async def anomalies(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    query = request.query
    status = query.get("status", "")
    status = status if status in STATUSES else ""
    min_age_minutes = _int(query.get("min_age", "0"), 0)
    merchant = query.get("merchant", "").strip()
    sort = query.get("sort", "age")
    sort = sort if sort in SORTS else "age"
    descending = query.get("dir", "desc") != "asc"
    page = _int(query.get("page", "1"), 1, lowest=1)
    limit = console.settings.list_limit
    calls = calls_of(request)
    rows: list[Row] = []
    token, failure = "", None
    try:
        while len(rows) < limit:
            reply = await calls.read(
                "ListAnomalies",
                recharge_pb2.ListAnomaliesRequest(
                    statuses=[recharge_pb2.OrderStatus.Value("ORDER_STATUS_" + status)] if status else [],
                    min_age_seconds=min_age_minutes * 60,
                    merchant_id=merchant,
                    page=recharge_pb2.PageRequest(
                        page_size=min(RPC_PAGE, limit - len(rows)), page_token=token
                    ),
                ),
            )
            rows += [Row.of(a) for a in reply.anomalies]
            token = reply.next_page_token
            if not token:
                break
    except CallFailed as failed:
        failure = failed
    hold = await console.backend.hold_seconds(calls)
    rows.sort(key=SORTS[sort], reverse=descending)
    size = console.settings.page_size
    pages = max((len(rows) + size - 1) // size, 1)
    page = min(page, pages)
    return render(
        request,
        "anomalies.html",
        rows=rows[(page - 1) * size : page * size],
        count=len(rows),
        capped=bool(token) and failure is None,
        limit=limit,
        failure=failure,
        hold=hold,
        statuses=STATUSES,
        status=status,
        min_age=min_age_minutes,
        merchant=merchant,
        sort=sort,
        descending=descending,
        page=page,
        pages=pages,
    )
