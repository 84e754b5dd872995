"""``recharge.v1.RechargeOps``: operators' view. ListAnomalies, ResolveAnomaly and RunSentinel
come with the sentinel (issue 6) and answer UNIMPLEMENTED until then (the generated base)."""

from __future__ import annotations

import grpc

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.grpc_status import maps_errors
from rc_common.server import Registrar
from recharge_service.adapters.messages import timeline_to_proto
from recharge_service.service_layer import queries
from recharge_service.service_layer.deps import Deps

_LATER = "comes with the sentinel (issue 6)"


class RechargeOpsServicer(recharge_pb2_grpc.RechargeOpsServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    @maps_errors
    async def GetOrderTimeline(
        self, request: recharge_pb2.GetOrderTimelineRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.GetOrderTimelineResponse:
        entries = await queries.get_timeline(self._deps, request.order_no)
        return recharge_pb2.GetOrderTimelineResponse(
            order_no=request.order_no, events=[timeline_to_proto(entry) for entry in entries]
        )

    async def ListAnomalies(
        self, request: recharge_pb2.ListAnomaliesRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.ListAnomaliesResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, _LATER)
        raise AssertionError("unreachable: abort raises")

    async def ResolveAnomaly(
        self, request: recharge_pb2.ResolveAnomalyRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.ResolveAnomalyResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, _LATER)
        raise AssertionError("unreachable: abort raises")

    async def RunSentinel(
        self, request: recharge_pb2.RunSentinelRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.SentinelReport:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, _LATER)
        raise AssertionError("unreachable: abort raises")


def registrar(deps: Deps) -> Registrar:
    def register(server: grpc.aio.Server) -> str:
        recharge_pb2_grpc.add_RechargeOpsServicer_to_server(RechargeOpsServicer(deps), server)
        return str(recharge_pb2.DESCRIPTOR.services_by_name["RechargeOps"].full_name)

    return register
