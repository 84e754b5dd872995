"""``recharge.v1.RechargeOps``: the operators' view. Thin — proto in, one service call, proto out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import grpc

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.auth import acting_subject
from rc_common.errors import NotFound
from rc_common.grpc_status import maps_errors
from rc_common.server import Registrar
from recharge_service.adapters.messages import order_to_proto, timeline_to_proto
from recharge_service.domain.merchant import check_merchant_id
from recharge_service.entrypoints.merchant_messages import (
    DEFAULT_ORDER_EXPIRY,
    change_to_proto,
    merchant_from_proto,
    merchant_to_proto,
    stale_status,
)
from recharge_service.entrypoints.ops_messages import approval_to_proto, health_to_proto, inspection_to_proto
from recharge_service.entrypoints.reconcile_messages import item_to_proto, run_to_proto
from recharge_service.service_layer import queries
from recharge_service.service_layer.anomalies import list_anomalies
from recharge_service.service_layer.approve import decide_approval
from recharge_service.service_layer.commands import DecideApproval, ResolveAnomaly
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.four_eyes import FourEyes, list_approvals
from recharge_service.service_layer.inspection import Lookups, inspect_order
from recharge_service.service_layer.merchants import StaleMerchant, list_merchants, put_merchant
from recharge_service.service_layer.ops_health import HealthSources, ops_health
from recharge_service.service_layer.reconcile import Reconciler
from recharge_service.service_layer.resolve import resolve_anomaly
from recharge_service.service_layer.sentinel import Sentinel


@dataclass(frozen=True)
class OperatorTools:
    """What the console's calls need beyond the use cases' ``Deps`` (the composition root builds
    it): four eyes' rule, the read-only lookups of InspectOrder, the sources of GetOpsHealth."""

    four_eyes: FourEyes
    lookups: Lookups
    health: HealthSources


class RechargeOpsServicer(recharge_pb2_grpc.RechargeOpsServicer):
    def __init__(
        self,
        deps: Deps,
        sentinel: Sentinel,
        reconciler: Reconciler | None = None,
        tools: OperatorTools | None = None,
    ) -> None:
        self._deps = deps
        self._sentinel = sentinel
        self._reconciler = reconciler
        self._tools = tools

    async def _tools_or_abort(self, context: grpc.aio.ServicerContext) -> OperatorTools:
        if self._tools is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "operator tools are not wired here")
            raise AssertionError("unreachable: abort raises")
        return self._tools

    async def _reconciler_or_abort(self, context: grpc.aio.ServicerContext) -> Reconciler:
        if self._reconciler is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "reconciliation is not wired in this server")
            raise AssertionError("unreachable: abort raises")
        return self._reconciler

    @maps_errors
    async def RunReconciliation(
        self, request: recharge_pb2.RunReconciliationRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.RunReconciliationResponse:
        reconciler = await self._reconciler_or_abort(context)
        runs = await reconciler.run(request.date, request.merchant_id, acting_subject())
        return recharge_pb2.RunReconciliationResponse(runs=[run_to_proto(run) for run in runs])

    @maps_errors
    async def GetReconciliation(
        self, request: recharge_pb2.GetReconciliationRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.GetReconciliationResponse:
        reconciler = await self._reconciler_or_abort(context)
        page = await reconciler.get(
            request.date, request.merchant_id, list(request.categories),
            request.page.page_size, request.page.page_token,
        )  # fmt: skip
        return recharge_pb2.GetReconciliationResponse(
            runs=[run_to_proto(run) for run in page.runs],
            items=[item_to_proto(item) for item in page.items],
            next_page_token=page.next_page_token,
        )

    @maps_errors
    async def GetOrderTimeline(
        self, request: recharge_pb2.GetOrderTimelineRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.GetOrderTimelineResponse:
        entries = await queries.get_timeline(self._deps, request.order_no, request.merchant_id)
        return recharge_pb2.GetOrderTimelineResponse(
            order_no=request.order_no, events=[timeline_to_proto(entry) for entry in entries]
        )

    @maps_errors
    async def ListAnomalies(
        self, request: recharge_pb2.ListAnomaliesRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.ListAnomaliesResponse:
        found = await list_anomalies(
            self._deps,
            hold=self._sentinel.policy.hold,
            statuses=list(request.statuses),
            min_age_seconds=request.min_age_seconds,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
            merchant_id=request.merchant_id,
        )
        return recharge_pb2.ListAnomaliesResponse(
            anomalies=[
                recharge_pb2.Anomaly(
                    order=order_to_proto(a.order),
                    age_seconds=int(a.age / timedelta(seconds=1)),
                    attempts=a.order.attempts,
                    last_error=a.order.last_error,
                    reason=a.reason,
                )
                for a in found.anomalies
            ],
            next_page_token=found.next_page_token,
        )

    @maps_errors
    async def ResolveAnomaly(
        self, request: recharge_pb2.ResolveAnomalyRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.ResolveAnomalyResponse:
        # The operator is the authenticated one (the token's subject), never request.operator.
        command = ResolveAnomaly(
            request.order_no, request.action, acting_subject(), request.reason, request.merchant_id
        )
        four_eyes = self._tools.four_eyes if self._tools is not None else None
        resolution = await resolve_anomaly(self._deps, self._sentinel.policy, command, four_eyes)
        approval = resolution.approval
        return recharge_pb2.ResolveAnomalyResponse(
            order=order_to_proto(resolution.order),
            outcome=resolution.outcome,
            approval=approval_to_proto(approval) if approval is not None else None,
        )

    @maps_errors
    async def InspectOrder(
        self, request: recharge_pb2.InspectOrderRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.InspectOrderResponse:
        tools = await self._tools_or_abort(context)
        found = await inspect_order(
            self._deps, tools.lookups, tools.four_eyes, self._sentinel.policy.hold,
            request.order_no, request.merchant_id,
        )  # fmt: skip
        return inspection_to_proto(found)

    @maps_errors
    async def FindOrders(
        self, request: recharge_pb2.FindOrdersRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.FindOrdersResponse:
        orders = await queries.find_orders(
            self._deps, request.query, merchant_id=request.merchant_id, limit=request.limit
        )
        return recharge_pb2.FindOrdersResponse(orders=[order_to_proto(order) for order in orders])

    @maps_errors
    async def ListApprovals(
        self, request: recharge_pb2.ListApprovalsRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.ListApprovalsResponse:
        page = await list_approvals(
            self._deps,
            statuses=list(request.statuses),
            merchant_id=request.merchant_id,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return recharge_pb2.ListApprovalsResponse(
            approvals=[approval_to_proto(a) for a in page.approvals], next_page_token=page.next_page_token
        )

    @maps_errors
    async def DecideApproval(
        self, request: recharge_pb2.DecideApprovalRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.DecideApprovalResponse:
        # The decider is the authenticated one (the token's subject): four eyes compares people.
        command = DecideApproval(request.approval_id, request.approve, acting_subject(), request.reason)
        decided = await decide_approval(self._deps, self._sentinel.policy, command)
        return recharge_pb2.DecideApprovalResponse(
            approval=approval_to_proto(decided.approval), order=order_to_proto(decided.order)
        )

    @maps_errors
    async def GetOpsHealth(
        self, request: recharge_pb2.GetOpsHealthRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.OpsHealth:
        tools = await self._tools_or_abort(context)
        return health_to_proto(await ops_health(self._deps, tools.health, self._sentinel))

    @maps_errors
    async def RunSentinel(
        self, request: recharge_pb2.RunSentinelRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.SentinelReport:
        report = await self._sentinel.run(ignore_hold=request.ignore_hold)
        return recharge_pb2.SentinelReport(**report.as_dict())

    @maps_errors
    async def PutMerchant(
        self, request: recharge_pb2.PutMerchantRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.Merchant:
        config = merchant_from_proto(request.merchant, DEFAULT_ORDER_EXPIRY)
        try:
            written = await put_merchant(
                self._deps.merchants,
                config,
                request.expected_version,
                acting_subject(),  # the token's subject; request.operator is deprecated and ignored
                request.reason,
                self._deps.clock(),
            )
        except StaleMerchant as exc:  # the contract says ABORTED (read again, then retry)
            status = stale_status(exc)
            await context.abort(status.code, status.details, status.trailing_metadata)
            raise AssertionError("unreachable: abort raises") from exc
        return merchant_to_proto(written)

    @maps_errors
    async def GetMerchant(
        self, request: recharge_pb2.GetMerchantRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.GetMerchantResponse:
        merchant_id = check_merchant_id(request.merchant_id)
        # From the history (the database), not the cache of current versions: an operator about
        # to change the merchant must see the version a PutMerchant will be checked against.
        history = await self._deps.merchants.history(merchant_id)
        if not history:
            raise NotFound(f"no merchant {merchant_id}")
        return recharge_pb2.GetMerchantResponse(
            merchant=merchant_to_proto(history[-1].config), history=[change_to_proto(c) for c in history]
        )

    @maps_errors
    async def ListMerchants(
        self, request: recharge_pb2.ListMerchantsRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.ListMerchantsResponse:
        page = await list_merchants(self._deps.merchants, request.page.page_size, request.page.page_token)
        return recharge_pb2.ListMerchantsResponse(
            merchants=[merchant_to_proto(c) for c in page.merchants], next_page_token=page.next_page_token
        )


def registrar(
    deps: Deps,
    sentinel: Sentinel,
    reconciler: Reconciler | None = None,
    tools: OperatorTools | None = None,
) -> Registrar:
    def register(server: grpc.aio.Server) -> str:
        servicer = RechargeOpsServicer(deps, sentinel, reconciler, tools)
        recharge_pb2_grpc.add_RechargeOpsServicer_to_server(servicer, server)
        return str(recharge_pb2.DESCRIPTOR.services_by_name["RechargeOps"].full_name)

    return register
