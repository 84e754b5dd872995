"""A fake recharge center on 127.0.0.1:0 for the console: RechargeOps and GetRechargeOrder answered
from a few canned orders, every request recorded with the operator token it carried.

``TodaysOps`` serves what the recharge center serves before issue 17's server side (the new RPCs
answer UNIMPLEMENTED, as the real servicer does); ``FullOps`` also serves InspectOrder,
FindOrders, the approvals and GetOpsHealth. The real policy table and token check run in front
(``create_server`` with the tests' key), so a call the console makes with a wrong token or role is
refused as the real one would refuse it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from protos.recharge.v1 import recharge_pb2 as pb
from protos.recharge.v1 import recharge_pb2_grpc
from rc_common.auth import verify_token
from rc_common.errors import NotFound, Refused
from rc_common.grpc_status import abort_with
from rc_common.server import GrpcServer, create_server
from tests.auth import KEY, security

REVIEW = "R202611300000000000000001"
UNKNOWN = "R202611300000000000000002"
BIG = "R202611300000000000000003"
CARD_NO = "8900000000000042"
TRANSACTION = "4200000000000000000000042"


def order(order_no: str, status: int, pay_fen: int) -> pb.RechargeOrder:
    made = pb.RechargeOrder(
        order_no=order_no, card_no=CARD_NO, channel=pb.CHANNEL_POS, status=status,  # type: ignore[arg-type]
        pay_amount_fen=pay_fen, bonus_fen=3_000, credit_amount_fen=pay_fen + 3_000, merchant_id="bakery",
        transaction_id=TRANSACTION,
        failure_reason="refund ended ABNORMAL" if status == pb.ORDER_STATUS_MANUAL_REVIEW else "",
    )  # fmt: skip
    made.created_at.FromSeconds(1_796_000_000)
    made.updated_at.FromSeconds(1_796_000_100)
    return made


ORDERS = {
    REVIEW: order(REVIEW, pb.ORDER_STATUS_MANUAL_REVIEW, 123_456),
    UNKNOWN: order(UNKNOWN, pb.ORDER_STATUS_CREDIT_UNKNOWN, 2_000),
    BIG: order(BIG, pb.ORDER_STATUS_CREDIT_UNKNOWN, 100_000),
}


class TodaysOps(recharge_pb2_grpc.RechargeOpsServicer, recharge_pb2_grpc.RechargeCenterServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.received: list[tuple[str, Any, str, frozenset[str]]] = []

    def record(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        token = dict(context.invocation_metadata() or ()).get("authorization", "").removeprefix("Bearer ")
        subject, roles = verify_token(KEY, token)
        self.received.append((method, request, subject, roles))

    def of(self, method: str) -> list[tuple[Any, str, frozenset[str]]]:
        return [(r, s, roles) for m, r, s, roles in self.received if m == method]

    async def _order(self, order_no: str, context: grpc.aio.ServicerContext) -> pb.RechargeOrder:
        if order_no not in ORDERS:
            await abort_with(context, NotFound(f"no order {order_no}"))
        return ORDERS[order_no]

    async def ListAnomalies(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.record("ListAnomalies", request, context)
        rows = [
            pb.Anomaly(order=ORDERS[REVIEW], age_seconds=7_500, attempts=0, reason="refund ended ABNORMAL"),
            pb.Anomaly(order=ORDERS[UNKNOWN], age_seconds=30, attempts=2,
                       last_error="ConfirmRecharge UNAVAILABLE",
                       reason="credit outcome unknown; ConfirmRecharge UNAVAILABLE"),
            pb.Anomaly(order=ORDERS[BIG], age_seconds=4_000, attempts=1, reason="credit outcome unknown"),
        ]  # fmt: skip
        wanted = set(request.statuses)
        rows = [r for r in rows if not wanted or r.order.status in wanted]
        rows = [r for r in rows if r.age_seconds >= request.min_age_seconds]
        return pb.ListAnomaliesResponse(anomalies=rows)

    async def GetOrderTimeline(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.record("GetOrderTimeline", request, context)
        await self._order(request.order_no, context)
        event = pb.TimelineEvent(
            seq=1, kind="remote_call", method="/card.v1.CardSystem/ConfirmRecharge", outcome="refused",
            latency_ms=6, actor="system", node="r1", error="FAILED_PRECONDITION CARD_FROZEN: <frozen>",
            from_status=pb.ORDER_STATUS_PAID, to_status=pb.ORDER_STATUS_UNSPECIFIED,  # type: ignore[arg-type]
        )  # fmt: skip
        event.at.FromSeconds(1_796_000_050)
        return pb.GetOrderTimelineResponse(order_no=request.order_no, events=[event])

    async def GetRechargeOrder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.record("GetRechargeOrder", request, context)
        found = await self._order(request.order_no, context)
        if request.merchant_id != found.merchant_id:
            await abort_with(context, NotFound("another merchant's"))
        return found

    async def ListMerchants(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.record("ListMerchants", request, context)
        return pb.ListMerchantsResponse(
            merchants=[pb.Merchant(merchant_id="teahouse"), pb.Merchant(merchant_id="bakery")]
        )

    async def ResolveAnomaly(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.record("ResolveAnomaly", request, context)
        found = await self._order(request.order_no, context)
        if request.action == pb.RESOLVE_ACTION_CONFIRM_CREDIT:
            await abort_with(
                context, Refused("CARD_NOT_CREDITED", "the card system says VOIDED: not credited")
            )
        if request.action == pb.RESOLVE_ACTION_REFUND and found.pay_amount_fen > 50_000:
            approval = pb.Approval(approval_id="A1", order_no=found.order_no, status="PENDING")
            return pb.ResolveAnomalyResponse(order=found, outcome="APPROVAL_REQUIRED", approval=approval)
        return pb.ResolveAnomalyResponse(order=found, outcome="RETRY: looked again")

    async def GetReconciliation(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.record("GetReconciliation", request, context)
        run = pb.ReconciliationRun(date=request.date, merchant_id="bakery", status="COMPLETED", differences=1)
        item = pb.ReconciliationItem(
            date=request.date, merchant_id="bakery", order_no=REVIEW, category="PAID_NOT_SETTLED",
            detail="paid, not settled, with a comma", wechat="SUCCESS", ours="MANUAL_REVIEW", card="VOIDED",
            wechat_fen=123_456, ours_fen=123_456,
        )  # fmt: skip
        return pb.GetReconciliationResponse(runs=[run], items=[item])


class FullOps(TodaysOps):
    """What the recharge center answers once issue 17's server side is in."""

    async def InspectOrder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.record("InspectOrder", request, context)
        found = await self._order(request.order_no, context)
        card = pb.RemoteView(outcome="done", state="VOIDED")
        trade = pb.RemoteView(outcome="unknown", detail="QueryOrder DEADLINE_EXCEEDED")
        refund = pb.RemoteView(outcome="done", state="ABNORMAL", amount_fen=found.pay_amount_fen)
        actions = [
            pb.ActionPreview(action=pb.RESOLVE_ACTION_RETRY_NOW, allowed=True, effect="looks again"),
            pb.ActionPreview(action=pb.RESOLVE_ACTION_REFUND, allowed=False,
                             refused_reason="REFUND_ABNORMAL"),
            pb.ActionPreview(action=pb.RESOLVE_ACTION_CONFIRM_CREDIT, allowed=False,
                             refused_reason="CARD_NOT_SUCCEEDED"),
        ]  # fmt: skip
        return pb.InspectOrderResponse(
            order=found, card=card, wechat_trade=trade, wechat_refund=refund, actions=actions,
            age_seconds=7_500, hold_seconds=3_600,
        )  # fmt: skip

    async def FindOrders(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.record("FindOrders", request, context)
        if request.query == CARD_NO:
            return pb.FindOrdersResponse(orders=list(ORDERS.values()))
        return pb.FindOrdersResponse(
            orders=[o for o in ORDERS.values() if request.query in (o.order_no, o.transaction_id)][:1]
        )

    async def ListApprovals(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.record("ListApprovals", request, context)
        mine = pb.Approval(
            approval_id="A1",
            order_no=BIG,
            merchant_id="bakery",
            action=pb.RESOLVE_ACTION_REFUND,
            amount_fen=100_000,
            status="PENDING",
            requested_by="olga",
            request_reason="customer asked",
        )
        return pb.ListApprovalsResponse(approvals=[mine])  # fmt: skip

    async def DecideApproval(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.record("DecideApproval", request, context)
        decided = pb.Approval(
            approval_id=request.approval_id,
            order_no=BIG,
            merchant_id="bakery",
            status="APPROVED" if request.approve else "REJECTED",
            outcome="voided; refund R-R1: REFUNDING",
        )
        return pb.DecideApprovalResponse(approval=decided, order=ORDERS[BIG])  # fmt: skip

    async def GetOpsHealth(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.record("GetOpsHealth", request, context)
        health = pb.OpsHealth(
            node_id="r1", hold_seconds=3_600, pending_approvals=1, outbox_backlog=4,
            systems=[pb.SystemHealth(name="card", status="SERVING", latency_ms=3),
                     pb.SystemHealth(name="wechat", status="UNKNOWN", latency_ms=1000, detail="no answer")],
            orders_by_status={"MANUAL_REVIEW": 1, "CREDITED": 9},
        )  # fmt: skip
        run = health.sentinel_runs.add(node_id="r1")
        run.report.examined = 3
        return health


@asynccontextmanager
async def serving(fake: TodaysOps) -> AsyncIterator[GrpcServer]:
    def ops(server: grpc.aio.Server) -> str:
        recharge_pb2_grpc.add_RechargeOpsServicer_to_server(fake, server)
        return "recharge.v1.RechargeOps"

    def center(server: grpc.aio.Server) -> str:
        recharge_pb2_grpc.add_RechargeCenterServicer_to_server(fake, server)
        return "recharge.v1.RechargeCenter"

    server = create_server("127.0.0.1:0", [ops, center], security=security())
    await server.start()
    try:
        yield server
    finally:
        await server.stop(0)
