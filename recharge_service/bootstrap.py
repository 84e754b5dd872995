"""Composition root of the recharge center: database, clients, services, servicers, dispatcher.

Nothing runs at import. ``build`` wires everything and returns a server whose ``stop`` also stops
the dispatcher, waits for (then cancels) background credit steps, closes the gRPC channels and
disposes of the database engine.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import grpc

from rc_common.db import Database
from rc_common.logs import RequestContextInterceptor
from rc_common.server import GrpcServer, create_server, wait_for_signal
from recharge_service.adapters.card_client import CardClient
from recharge_service.adapters.followup_clients import CallbackClient, NoticeClient
from recharge_service.adapters.orm import metadata
from recharge_service.adapters.payment_client import PaymentClient
from recharge_service.adapters.retrying import RetryPolicy
from recharge_service.adapters.timeline import DbTimeline
from recharge_service.adapters.wechat_notifications import NotificationOpener
from recharge_service.entrypoints import center, notifications, ops
from recharge_service.entrypoints.dispatcher import OutboxDispatcher
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.dispatch import OutboxPolicy
from recharge_service.service_layer.unit_of_work import uow_factory
from recharge_service.settings import RechargeSettings


@dataclass
class App:
    """Everything ``build`` made (tests reach in; ``server.stop`` tears it all down)."""

    server: GrpcServer
    deps: Deps
    db: Database
    dispatcher: OutboxDispatcher


async def create_schema(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


def instance_name(settings: RechargeSettings) -> str:
    return settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"


async def build_app(settings: RechargeSettings) -> App:
    db = Database(settings.db)
    await create_schema(db)
    timeline = DbTimeline(db)
    card_channel = grpc.aio.insecure_channel(settings.card_target)
    payment_channel = grpc.aio.insecure_channel(settings.payment_target)
    remote = RetryPolicy(
        settings.remote_attempts,
        settings.remote_deadline,
        settings.remote_backoff,
        settings.remote_backoff_max,
    )
    confirm = RetryPolicy(
        settings.confirm_attempts,
        settings.confirm_deadline,
        settings.confirm_backoff,
        settings.remote_backoff_max,
    )
    deps = Deps(
        uow=uow_factory(db),
        card=CardClient(card_channel, timeline, remote, confirm),
        payments=PaymentClient(payment_channel, timeline, remote),
        order_expiry=timedelta(seconds=settings.order_expiry),
        mchid=settings.wechat_mchid,
    )
    opener = NotificationOpener(settings.wechat_keys_dir, settings.notify_max_skew)
    callbacks = CallbackClient(
        {
            "OFFICIAL_ACCOUNT": settings.callback_official_account,
            "POS": settings.callback_pos,
            "THIRD_PARTY": settings.callback_third_party,
        },
        settings.outbox_deadline,
    )
    dispatcher = OutboxDispatcher(
        deps,
        NoticeClient(payment_channel, settings.outbox_deadline),
        callbacks,
        OutboxPolicy(
            owner=instance_name(settings),
            lease=timedelta(seconds=settings.outbox_lease),
            batch=settings.outbox_batch,
            backoff=settings.outbox_backoff,
            backoff_max=settings.outbox_backoff_max,
            max_attempts=settings.outbox_max_attempts,
        ),
        settings.outbox_interval,
    )
    server = create_server(
        settings.listen,
        [center.registrar(deps), ops.registrar(deps), notifications.registrar(deps, opener)],
        interceptors=[RequestContextInterceptor()],
    )

    async def shutdown() -> None:
        await dispatcher.stop()
        await deps.background.close(settings.grace)
        await callbacks.close()
        await card_channel.close()
        await payment_channel.close()
        await db.dispose()

    server.on_stop.append(shutdown)
    return App(server, deps, db, dispatcher)


async def build(settings: RechargeSettings) -> GrpcServer:
    return (await build_app(settings)).server


async def serve(settings: RechargeSettings) -> None:
    app = await build_app(settings)
    await app.server.start()
    app.dispatcher.start()
    await wait_for_signal()
    await app.server.stop(settings.grace)
