"""Composition root of the recharge center: database, clients, services, servicers, dispatcher,
sentinel.

Nothing runs at import. ``build`` wires everything and returns a server whose ``stop`` also stops
the sentinel's schedule (cancelling a run in progress: its leases expire) and the dispatcher, waits
for (then cancels) background credit steps, closes the gRPC channels and disposes of the database
engine. ``serve`` starts the server, the dispatcher and the sentinel's schedule.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import grpc

from rc_common import page_tokens
from rc_common.access import ServerSecurity
from rc_common.admission import AdmissionInterceptor, AdmissionPolicy
from rc_common.channels import ClientAuth, aio_channel
from rc_common.completion import RunToCompletionInterceptor
from rc_common.db import Database
from rc_common.logs import RequestContextInterceptor
from rc_common.metrics import MetricsServer, server_interceptors
from rc_common.migrations import require_current, upgrade
from rc_common.server import GrpcServer, create_server, wait_for_signal
from recharge_service.adapters.card_client import CardClient
from recharge_service.adapters.followup_clients import CallbackClient, NoticeClient
from recharge_service.adapters.health import DatabaseProbe, GrpcHealthProbe
from recharge_service.adapters.merchants import SqlMerchantDirectory
from recharge_service.adapters.order_gauges import OrderGauges, SqlOrderFigures
from recharge_service.adapters.payment_client import PaymentClient
from recharge_service.adapters.reconcile_sides import GrpcSides
from recharge_service.adapters.reconciliation import SqlReconciliationStore
from recharge_service.adapters.retrying import RetryPolicy
from recharge_service.adapters.unit_of_work import uow_factory
from recharge_service.adapters.wechat_notifications import NotificationOpener
from recharge_service.adapters.wechatpay_v3 import WechatPayV3Client
from recharge_service.entrypoints import center, notifications, ops
from recharge_service.entrypoints.dispatcher import OutboxDispatcher
from recharge_service.entrypoints.notify_http import NotifyHttpPolicy, NotifyHttpServer
from recharge_service.entrypoints.ops import OperatorTools
from recharge_service.entrypoints.reconcile_job import ReconcileJob
from recharge_service.entrypoints.sentinel_job import SentinelJob
from recharge_service.migrations import SCHEMA
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.dispatch import OutboxPolicy
from recharge_service.service_layer.four_eyes import FourEyes
from recharge_service.service_layer.inspection import Lookups
from recharge_service.service_layer.limits import OpenOrderCaps
from recharge_service.service_layer.ops_health import HealthProbe, HealthSources
from recharge_service.service_layer.ports import PaymentGateway, Timeline
from recharge_service.service_layer.reconcile import Reconciler
from recharge_service.service_layer.sentinel import Sentinel, SentinelPolicy
from recharge_service.service_layer.timeline_notes import TimelineNotes, Unrecorded
from recharge_service.settings import PaymentBackend, RechargeSettings, reconcile_time


@dataclass
class App:
    """Everything ``build`` made (tests reach in; ``server.stop`` tears it all down)."""

    server: GrpcServer
    deps: Deps
    db: Database
    dispatcher: OutboxDispatcher
    sentinel: Sentinel
    sentinel_job: SentinelJob
    #: The HTTP notification endpoint (``--notify-http-listen``), started by ``start_http``.
    notify_http: NotifyHttpServer | None = None
    #: ``/metrics`` (``--metrics-listen``), started by ``start_http``.
    metrics: MetricsServer | None = None
    #: The daily three-way reconciliation (``RechargeOps.RunReconciliation`` and the job).
    reconciler: Reconciler | None = None
    #: Its daily schedule, when ``--reconcile-enabled``.
    reconcile_job: ReconcileJob | None = None

    def start_background(self) -> None:
        """The outbox dispatcher, the sentinel's schedule and, when enabled, the daily
        reconciliation's (``serve`` calls this after start)."""
        self.dispatcher.start()
        self.sentinel_job.start()
        if self.reconcile_job is not None:
            self.reconcile_job.start()

    async def start_http(self) -> None:
        """The HTTP notification endpoint and ``/metrics``, each when configured (``serve`` calls
        this after start; ``server.stop`` stops them first)."""
        if self.notify_http is not None:
            await self.notify_http.start()
        if self.metrics is not None:
            await self.metrics.start()


async def create_schema(db: Database) -> None:
    """Migrate ``db`` to this version's schema (what ``python -m recharge_service migrate`` does;
    for tests and tools: a service only checks the schema at start)."""
    await upgrade(db, SCHEMA)


def node_name(settings: RechargeSettings) -> str:
    """This replica's id: on its leases, its timeline rows and its log lines."""
    return settings.node_id or f"{socket.gethostname()}-{os.getpid()}"


def sentinel_policy(settings: RechargeSettings) -> SentinelPolicy:
    return SentinelPolicy.from_settings(settings.sentinel, node_name(settings))


def admission_policy(settings: RechargeSettings) -> AdmissionPolicy:
    limits = settings.limits
    return AdmissionPolicy.of(
        limits.max_concurrent_calls,
        limits.max_queued_calls,
        limits.max_queue_wait,
        limits.admission_overrides,
    )


def admission(settings: RechargeSettings) -> AdmissionInterceptor:
    return AdmissionInterceptor(admission_policy(settings))


async def build_app(settings: RechargeSettings) -> App:
    # First: a keys dir holding WeChat's platform private key stops the start (key_guard).
    opener = NotificationOpener(settings.notify.wechat_keys_dir, settings.notify.max_skew)
    db = Database(
        settings.database.url,
        pool_size=settings.database.pool_size,
        max_overflow=settings.database.max_overflow,
    )
    await require_current(db, SCHEMA)  # refuses a schema that is behind: `migrate` is a step of its own
    page_tokens.configure(settings.page_token_key_file)
    uow = uow_factory(db, node=node_name(settings), database_clock=True)
    timeline = TimelineNotes(uow)
    security = ServerSecurity.from_settings(settings.tls_dir, settings.auth_key_file)
    client_auth = ClientAuth(security.tls)  # our certificate (CN recharge) to the services we call
    card_channel = aio_channel(settings.remote.card_target, client_auth)
    payment_channel = aio_channel(settings.remote.payment_target, client_auth)
    remote = RetryPolicy.from_settings(settings.remote)
    confirm = RetryPolicy.from_settings(settings.confirm)
    payments = payment_gateway(settings, payment_channel, timeline, remote)
    deps = Deps(
        uow=uow,
        card=CardClient(card_channel, timeline, remote, confirm),
        payments=payments,
        merchants=SqlMerchantDirectory(db, settings.merchant_cache_ttl),
        sp_mchid=settings.notify.wechat_mchid,
        node=node_name(settings),
        lease=timedelta(seconds=settings.sentinel.lease),
        caps=OpenOrderCaps.from_settings(settings.limits),
        void_delay=timedelta(seconds=settings.sentinel.void_delay),
    )
    callbacks = CallbackClient(settings.outbox.deadline, client_auth)
    dispatcher = OutboxDispatcher(
        deps,
        NoticeClient(payment_channel, settings.outbox.deadline),
        callbacks,
        OutboxPolicy.from_settings(settings.outbox, node_name(settings)),
        settings.outbox.interval,
    )
    sentinel = Sentinel(deps, sentinel_policy(settings))
    sentinel_job = SentinelJob(sentinel, settings.sentinel.interval)
    reconciler = build_reconciler(settings, db, deps, card_channel, payment_channel, payments)
    reconcile_job = ReconcileJob(reconciler, *reconcile_time(settings.reconcile.at))
    tools = operator_tools(settings, db, card_channel, payment_channel, remote)
    server = create_server(
        settings.listen,
        [
            center.registrar(deps),
            ops.registrar(deps, sentinel, reconciler, tools),
            notifications.registrar(deps, opener),
        ],
        interceptors=[
            *server_interceptors(),
            RequestContextInterceptor(),
            RunToCompletionInterceptor(),
            admission(settings),
        ],
        security=security,
    )

    notify_http = None
    if settings.notify.http_listen:
        gate = admission_policy(settings).limit_for("Notify")  # the gRPC Notify's limits, its own gate
        policy = NotifyHttpPolicy(
            settings.notify.http_path,
            settings.notify.http_max_body,
            settings.notify.http_read_timeout,
            gate.concurrent if gate else 0,
            gate.queued if gate else 0,
            settings.limits.max_queue_wait,
        )
        notify_http = NotifyHttpServer(
            deps, opener, settings.notify.http_listen, policy, settings.notify.http_tls_dir, settings.grace
        )

    metrics = None
    if settings.metrics_listen:
        gauges = OrderGauges(db, settings.metrics_cache, deps.clock)
        metrics = MetricsServer(settings.metrics_listen, [gauges])

    async def shutdown() -> None:
        if metrics is not None:
            await metrics.stop()
        if notify_http is not None:
            await notify_http.stop()
        await sentinel_job.stop()
        await reconcile_job.stop()
        await dispatcher.stop()
        await deps.background.close(settings.grace)
        await callbacks.close()
        await card_channel.close()
        await payment_channel.close()
        for gateway in (payments, tools.lookups.payments):
            if isinstance(gateway, WechatPayV3Client):
                await gateway.close()
        await db.dispose()

    server.on_stop.append(shutdown)
    app = App(server, deps, db, dispatcher, sentinel, sentinel_job, notify_http, metrics)
    app.reconciler = reconciler
    app.reconcile_job = reconcile_job if settings.reconcile.enabled else None
    return app


def operator_tools(
    settings: RechargeSettings,
    db: Database,
    card_channel: grpc.aio.Channel,
    payment_channel: grpc.aio.Channel,
    remote: RetryPolicy,
) -> OperatorTools:
    """Four eyes' threshold; InspectOrder's lookups (the flows' clients, one attempt within the
    normal deadline, nothing recorded); GetOpsHealth's probes and figures."""
    once = dataclasses.replace(remote, attempts=1)
    unrecorded = Unrecorded()
    lookups = Lookups(
        CardClient(card_channel, unrecorded, once, once),
        payment_gateway(settings, payment_channel, unrecorded, once),
    )
    deadline = settings.ops.health_deadline
    probes: list[HealthProbe] = [
        GrpcHealthProbe("card", card_channel, settings.remote.card_target, deadline),
        GrpcHealthProbe("wechat", payment_channel, settings.remote.payment_target, deadline),
        DatabaseProbe(db, deadline),
    ]
    return OperatorTools(
        FourEyes(settings.ops.four_eyes_refund_above), lookups, HealthSources(probes, SqlOrderFigures(db))
    )


def build_reconciler(
    settings: RechargeSettings,
    db: Database,
    deps: Deps,
    card_channel: grpc.aio.Channel,
    payment_channel: grpc.aio.Channel,
    payments: PaymentGateway,
) -> Reconciler:
    v3 = payments if isinstance(payments, WechatPayV3Client) else None
    sides = GrpcSides(
        card_channel, payment_channel, settings.notify.wechat_mchid, settings.reconcile.deadline, v3
    )
    hold = timedelta(seconds=settings.sentinel.hold)
    return Reconciler(SqlReconciliationStore(db), sides, deps.merchants, hold, deps.clock)


def payment_gateway(
    settings: RechargeSettings, channel: grpc.aio.Channel, timeline: Timeline, remote: RetryPolicy
) -> PaymentGateway:
    """``--payment-backend``: the simulator's gRPC contract, or WeChat Pay APIv3 over HTTPS (keys
    from ``--wechat-keys-dir`` and each direct merchant's ``keys_dir``)."""
    if settings.wechatpay.backend is PaymentBackend.WECHATPAY_V3:
        return WechatPayV3Client(
            timeline,
            remote,
            sp_mchid=settings.notify.wechat_mchid,
            keys_dir=settings.notify.wechat_keys_dir,
            base_url=settings.wechatpay.base_url,
            ca_file=settings.wechatpay.ca_file,
            appid=settings.wechatpay.appid,
            sp_appid=settings.wechatpay.sp_appid,
            notify_url=settings.wechatpay.notify_url,
            max_skew_s=settings.notify.max_skew,
        )
    return PaymentClient(channel, timeline, remote, settings.notify.wechat_mchid)


async def build(settings: RechargeSettings) -> GrpcServer:
    return (await build_app(settings)).server


async def serve(settings: RechargeSettings) -> None:
    app = await build_app(settings)
    await app.server.start()
    await app.start_http()
    app.start_background()
    await wait_for_signal()
    await app.server.stop(settings.grace)
