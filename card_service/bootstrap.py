"""Composition root of the card system: builds the server with its dependencies."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import grpc

from card_service.adapters.unit_of_work import uow_factory
from card_service.domain.rules import Limits
from card_service.entrypoints.card_admin import CardAdminServicer
from card_service.entrypoints.card_system import LOCK_AWARE_METHODS, CardSystemServicer
from card_service.migrations import SCHEMA
from card_service.service_layer.context import CardContext
from card_service.service_layer.export import ExportPage, plant_extra_entry
from card_service.settings import CardSettings
from protos.card.v1 import card_pb2, card_pb2_grpc
from rc_common import page_tokens
from rc_common.access import ServerSecurity
from rc_common.admission import AdmissionInterceptor, AdmissionPolicy
from rc_common.db import Database
from rc_common.faults import FaultEngine, FaultInterceptor, FaultKind, hold_if_delayed
from rc_common.faults.servicer import load_plan_file, register_fault_control
from rc_common.logs import RequestContextInterceptor, get_logger
from rc_common.metrics import server_interceptors, start_metrics
from rc_common.migrations import require_current
from rc_common.server import GrpcServer, create_server, wait_for_signal

log = get_logger("card.bootstrap")


@dataclass
class CardApp:
    """The running parts, for ``serve`` and for in-process tests."""

    server: GrpcServer
    ctx: CardContext
    db: Database
    faults: FaultEngine
    fault_interceptor: FaultInterceptor


def _register_system(ctx: CardContext) -> Callable[[grpc.aio.Server], str]:
    def register(server: grpc.aio.Server) -> str:
        card_pb2_grpc.add_CardSystemServicer_to_server(CardSystemServicer(ctx), server)
        return str(card_pb2.DESCRIPTOR.services_by_name["CardSystem"].full_name)

    return register


def _register_admin(ctx: CardContext) -> Callable[[grpc.aio.Server], str]:
    def register(server: grpc.aio.Server) -> str:
        card_pb2_grpc.add_CardAdminServicer_to_server(CardAdminServicer(ctx), server)
        return str(card_pb2.DESCRIPTOR.services_by_name["CardAdmin"].full_name)

    return register


EXPORT_METHOD = "/card.v1.CardAdmin/ExportJournal"


def export_faults(engine: FaultEngine, clock: Callable[[], datetime]) -> Callable[[ExportPage], ExportPage]:
    """The JOURNAL_EXTRA_ENTRY fault: each firing adds one planted credit to the exported page."""
    serial = itertools.count(1)

    def alter(page: ExportPage) -> ExportPage:
        if engine.draw(EXPORT_METHOD, (FaultKind.JOURNAL_EXTRA_ENTRY,)) is None:
            return page
        merchant = page.entries[0].merchant_id if page.entries else ""
        log.info("fault_injected", method=EXPORT_METHOD, kind="JOURNAL_EXTRA_ENTRY")
        return plant_extra_entry(page, merchant, clock(), next(serial))

    return alter


async def build_app(settings: CardSettings) -> CardApp:
    db = Database(settings.db, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
    await require_current(db, SCHEMA)  # refuses a schema that is behind: `migrate` is a step of its own
    ctx = CardContext(
        uow=uow_factory(db),
        defaults=Limits(settings.min_pay_fen, settings.max_pay_fen, settings.balance_cap_fen),
        after_lock=hold_if_delayed,
    )
    page_tokens.configure(settings.page_token_key_file)
    engine = FaultEngine()
    if settings.faults:
        engine.set_plan(load_plan_file(settings.faults))
        log.info("fault_profile_loaded", path=settings.faults, rules=len(engine.stats().rules))
    ctx.alter_export = export_faults(engine, ctx.clock)
    interceptor = FaultInterceptor(engine, lock_aware_methods=LOCK_AWARE_METHODS)
    server = create_server(
        settings.listen,
        [_register_system(ctx), _register_admin(ctx), register_fault_control(engine)],
        interceptors=[
            *server_interceptors(),
            RequestContextInterceptor(),
            AdmissionInterceptor(
                AdmissionPolicy.of(
                    settings.max_concurrent_calls, settings.max_queued_calls, settings.max_queue_wait
                ),
                drop_gone=False,  # a simulated system processes late calls too (late success)
            ),
            interceptor,
        ],
        security=ServerSecurity.from_settings(settings.tls_dir, settings.auth_key_file),
    )
    # After the RPCs stop: let late (LATE_SUCCESS) work finish, then close the database.
    server.on_stop.append(interceptor.drain)
    server.on_stop.append(db.dispose)
    return CardApp(server, ctx, db, engine, interceptor)


async def build(settings: CardSettings) -> GrpcServer:
    return (await build_app(settings)).server


async def serve(settings: CardSettings) -> None:
    grpc_server = await build(settings)
    await grpc_server.start()
    metrics = await start_metrics(settings.metrics_listen)
    if metrics is not None:
        grpc_server.on_stop.insert(0, metrics.stop)
    await wait_for_signal()
    await grpc_server.stop(settings.grace)
