"""Composition root of the WeChat Pay simulator."""

from __future__ import annotations

import grpc

from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.faults import FaultEngine, FaultInterceptor
from rc_common.faults.servicer import load_plan_file, register_fault_control
from rc_common.logs import RequestContextInterceptor
from rc_common.server import GrpcServer, create_server, wait_for_signal
from wechat_mock.settings import WechatSettings


def _service_name(name: str) -> str:
    return str(wechatpay_pb2.DESCRIPTOR.services_by_name[name].full_name)


def _register_gateway(server: grpc.aio.Server) -> str:
    wechatpay_pb2_grpc.add_PaymentGatewayServicer_to_server(
        wechatpay_pb2_grpc.PaymentGatewayServicer(), server
    )
    return _service_name("PaymentGateway")


def _register_payer(server: grpc.aio.Server) -> str:
    wechatpay_pb2_grpc.add_PayerSimulatorServicer_to_server(
        wechatpay_pb2_grpc.PayerSimulatorServicer(), server
    )
    return _service_name("PayerSimulator")


def _register_messages(server: grpc.aio.Server) -> str:
    wechatpay_pb2_grpc.add_MessageSimulatorServicer_to_server(
        wechatpay_pb2_grpc.MessageSimulatorServicer(), server
    )
    return _service_name("MessageSimulator")


async def build(settings: WechatSettings) -> GrpcServer:
    engine = FaultEngine()
    if settings.faults:
        engine.set_plan(load_plan_file(settings.faults))
    return create_server(
        settings.listen,
        [_register_gateway, _register_payer, _register_messages, register_fault_control(engine)],
        interceptors=[RequestContextInterceptor(), FaultInterceptor(engine)],
    )


async def serve(settings: WechatSettings) -> None:
    grpc_server = await build(settings)
    await grpc_server.start()
    await wait_for_signal()
    await grpc_server.stop(settings.grace)
