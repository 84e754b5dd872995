"""``recharge.v1.RechargeCenter``: thin — proto in, one service call, proto out."""

from __future__ import annotations

import grpc

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.grpc_status import maps_errors
from rc_common.server import Registrar
from recharge_service.adapters.messages import order_to_proto
from recharge_service.service_layer import queries
from recharge_service.service_layer.commands import CreateRechargeOrder
from recharge_service.service_layer.create import create_recharge_order
from recharge_service.service_layer.deps import Deps


class RechargeCenterServicer(recharge_pb2_grpc.RechargeCenterServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    @maps_errors
    async def CreateRechargeOrder(
        self, request: recharge_pb2.CreateRechargeOrderRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.RechargeOrder:
        command = CreateRechargeOrder(
            card_no=request.card_no,
            pay_amount_fen=request.pay_amount_fen,
            channel=request.channel,
            idempotency_key=request.idempotency_key,
            payer_openid=request.payer_openid,
            merchant_id=request.merchant_id,
        )
        return order_to_proto(await create_recharge_order(command, self._deps))

    @maps_errors
    async def GetRechargeOrder(
        self, request: recharge_pb2.GetRechargeOrderRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.RechargeOrder:
        return order_to_proto(await queries.get_order(self._deps, request.merchant_id, request.order_no))

    @maps_errors
    async def ListRechargeOrders(
        self, request: recharge_pb2.ListRechargeOrdersRequest, context: grpc.aio.ServicerContext
    ) -> recharge_pb2.ListRechargeOrdersResponse:
        page = await queries.list_orders(
            self._deps,
            merchant_id=request.merchant_id,
            card_no=request.filter.card_no,
            statuses=list(request.filter.statuses),
            channel=request.filter.channel,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return recharge_pb2.ListRechargeOrdersResponse(
            orders=[order_to_proto(order) for order in page.orders], next_page_token=page.next_page_token
        )


def registrar(deps: Deps) -> Registrar:
    def register(server: grpc.aio.Server) -> str:
        recharge_pb2_grpc.add_RechargeCenterServicer_to_server(RechargeCenterServicer(deps), server)
        return str(recharge_pb2.DESCRIPTOR.services_by_name["RechargeCenter"].full_name)

    return register
