"""Composition root of the card system: builds the server with its dependencies."""

from __future__ import annotations

import grpc

from card_service.settings import CardSettings
from protos.card.v1 import card_pb2, card_pb2_grpc
from rc_common.faults import FaultEngine, FaultInterceptor
from rc_common.faults.servicer import load_plan_file, register_fault_control
from rc_common.logs import RequestContextInterceptor
from rc_common.server import GrpcServer, create_server, wait_for_signal


def _register_system(server: grpc.aio.Server) -> str:
    card_pb2_grpc.add_CardSystemServicer_to_server(card_pb2_grpc.CardSystemServicer(), server)
    return str(card_pb2.DESCRIPTOR.services_by_name["CardSystem"].full_name)


def _register_admin(server: grpc.aio.Server) -> str:
    card_pb2_grpc.add_CardAdminServicer_to_server(card_pb2_grpc.CardAdminServicer(), server)
    return str(card_pb2.DESCRIPTOR.services_by_name["CardAdmin"].full_name)


async def build(settings: CardSettings) -> GrpcServer:
    engine = FaultEngine()
    if settings.faults:
        engine.set_plan(load_plan_file(settings.faults))
    return create_server(
        settings.listen,
        [_register_system, _register_admin, register_fault_control(engine)],
        interceptors=[RequestContextInterceptor(), FaultInterceptor(engine)],
    )


async def serve(settings: CardSettings) -> None:
    grpc_server = await build(settings)
    await grpc_server.start()
    await wait_for_signal()
    await grpc_server.stop(settings.grace)
