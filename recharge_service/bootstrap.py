"""Composition root of the recharge center."""

from __future__ import annotations

import grpc

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.logs import RequestContextInterceptor
from rc_common.server import GrpcServer, create_server, wait_for_signal
from recharge_service.settings import RechargeSettings


def _register_center(server: grpc.aio.Server) -> str:
    recharge_pb2_grpc.add_RechargeCenterServicer_to_server(
        recharge_pb2_grpc.RechargeCenterServicer(), server
    )
    return str(recharge_pb2.DESCRIPTOR.services_by_name["RechargeCenter"].full_name)


def _register_ops(server: grpc.aio.Server) -> str:
    recharge_pb2_grpc.add_RechargeOpsServicer_to_server(recharge_pb2_grpc.RechargeOpsServicer(), server)
    return str(recharge_pb2.DESCRIPTOR.services_by_name["RechargeOps"].full_name)


def _register_notifications(server: grpc.aio.Server) -> str:
    wechatpay_pb2_grpc.add_PaymentNotificationsServicer_to_server(
        wechatpay_pb2_grpc.PaymentNotificationsServicer(), server
    )
    return str(wechatpay_pb2.DESCRIPTOR.services_by_name["PaymentNotifications"].full_name)


async def build(settings: RechargeSettings) -> GrpcServer:
    return create_server(
        settings.listen,
        [_register_center, _register_ops, _register_notifications],
        interceptors=[RequestContextInterceptor()],
    )


async def serve(settings: RechargeSettings) -> None:
    grpc_server = await build(settings)
    await grpc_server.start()
    await wait_for_signal()
    await grpc_server.stop(settings.grace)
