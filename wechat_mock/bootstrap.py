"""Composition root of the WeChat Pay simulator: keys, database, fault engine, use-case context,
background workers (notifier, refund settler) and the gRPC server, wired once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc

from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common import page_tokens
from rc_common.access import ServerSecurity
from rc_common.admission import AdmissionInterceptor, AdmissionPolicy
from rc_common.channels import ClientAuth
from rc_common.db import Database
from rc_common.faults import FaultEngine, FaultInterceptor
from rc_common.faults.servicer import load_plan_file, register_fault_control
from rc_common.logs import RequestContextInterceptor, get_logger
from rc_common.metrics import server_interceptors, start_metrics
from rc_common.migrations import require_current
from rc_common.server import GrpcServer, Registrar, create_server, wait_for_signal
from rc_common.settings import parse_listen
from wechat_mock.adapters import http_tls
from wechat_mock.adapters.http_notification_client import HttpNotificationClient
from wechat_mock.adapters.keys import PlatformKeys, ensure_direct_keys, ensure_keys, merchant_bundle_dir
from wechat_mock.adapters.notification_client import GrpcNotificationClient
from wechat_mock.adapters.unit_of_work import SqlUnitOfWorkFactory
from wechat_mock.domain.merchants import Accounts
from wechat_mock.entrypoints.http_api import ApiV3, MerchantAccount
from wechat_mock.entrypoints.http_server import HttpServer
from wechat_mock.entrypoints.servicers import (
    MessageSimulatorServicer,
    PayerSimulatorServicer,
    PaymentGatewayServicer,
)
from wechat_mock.migrations import SCHEMA
from wechat_mock.service_layer.context import Context
from wechat_mock.service_layer.notifier import Notifier
from wechat_mock.service_layer.ports import NOTIFICATIONS, REFUNDS, Due
from wechat_mock.service_layer.refund_settler import RefundSettler
from wechat_mock.service_layer.replicas import ReplicaSet
from wechat_mock.service_layer.unit_of_work import OnCommit
from wechat_mock.service_layer.wire import WireFormat
from wechat_mock.settings import WechatSettings

log = get_logger("wechat")


def _service_name(name: str) -> str:
    return str(wechatpay_pb2.DESCRIPTOR.services_by_name[name].full_name)


def _registrars(ctx: Context) -> list[Registrar]:
    def gateway(server: grpc.aio.Server) -> str:
        wechatpay_pb2_grpc.add_PaymentGatewayServicer_to_server(PaymentGatewayServicer(ctx), server)
        return _service_name("PaymentGateway")

    def payer(server: grpc.aio.Server) -> str:
        wechatpay_pb2_grpc.add_PayerSimulatorServicer_to_server(PayerSimulatorServicer(ctx), server)
        return _service_name("PayerSimulator")

    def messages(server: grpc.aio.Server) -> str:
        wechatpay_pb2_grpc.add_MessageSimulatorServicer_to_server(MessageSimulatorServicer(ctx), server)
        return _service_name("MessageSimulator")

    return [gateway, payer, messages, register_fault_control(ctx.faults)]


@dataclass
class WechatSimulator:
    """The running parts; tests reach in for ``ctx`` (the database) and ``engine`` (faults)."""

    grpc: GrpcServer
    ctx: Context
    engine: FaultEngine
    #: The service provider's keys (partner mode).
    keys: PlatformKeys
    notifier: Notifier
    settler: RefundSettler
    #: Each direct merchant's own keys, by mchid.
    direct_keys: dict[str, PlatformKeys] = field(default_factory=dict)
    #: The APIv3 HTTP facade (``--http-listen``), or None.
    http: HttpServer | None = None
    #: Its TLS certificate (a throwaway one when ``--http-tls-dir`` is empty), or None (plain HTTP).
    http_tls: http_tls.HttpTls | None = None
    _stopped: bool = False

    @property
    def address(self) -> str:
        return self.grpc.address

    @property
    def port(self) -> int:
        return self.grpc.port

    async def start(self) -> None:
        await self.grpc.start()
        if self.http is not None:
            await self.http.start()
        self.notifier.start()
        self.settler.start()

    async def stop(self, grace: float = 5.0) -> None:
        if not self._stopped:
            self._stopped = True
            await self.grpc.stop(grace)


def _waker(notifier: Notifier, settler: RefundSettler) -> OnCommit:
    def on_commit(added: Mapping[str, Sequence[Due]]) -> None:
        if NOTIFICATIONS in added:
            notifier.wake(added[NOTIFICATIONS])
        if REFUNDS in added:
            settler.wake()

    return on_commit


def _account(keys: PlatformKeys) -> MerchantAccount:
    return MerchantAccount(
        mchid=keys.mchid,
        cert_pem=keys.merchant_cert_pem,
        serial_no=keys.merchant_serial,
        private_key_pem=keys.private_key_pem,
        public_key_id=keys.public_key_id,
    )


def _http_server(
    settings: WechatSettings, ctx: Context, keys: PlatformKeys, direct_keys: Mapping[str, PlatformKeys]
) -> tuple[HttpServer | None, http_tls.HttpTls | None]:
    """The APIv3 facade of ``--http-listen`` (None when off) and its TLS files (None: plain HTTP,
    loopback only, checked by the settings)."""
    if not settings.http_listen:
        return None, None
    host, port = parse_listen(settings.http_listen)
    tls: http_tls.HttpTls | None = None
    if not settings.http_plaintext:
        tls = (
            http_tls.from_dir(settings.http_tls_dir)
            if settings.http_tls_dir
            else http_tls.throwaway(settings.keys_dir, host)
        )
    api = ApiV3(
        ctx,
        _account(keys),
        {mchid: _account(k) for mchid, k in direct_keys.items()},
        max_clock_skew_s=settings.http_max_clock_skew,
        max_concurrent=settings.max_concurrent_calls,
        max_queued=settings.max_queued_calls,
        max_queue_wait_s=settings.max_queue_wait,
    )
    server = HttpServer(api, host.strip("[]"), port, None if tls is None else tls.server_context())
    return server, tls


async def build(settings: WechatSettings) -> WechatSimulator:
    page_tokens.configure(settings.page_token_key_file)
    keys = ensure_keys(settings.keys_dir, settings.mchid)
    accounts = Accounts(settings.mchid, settings.appid, settings.direct_accounts)
    direct_keys = ensure_direct_keys(settings.keys_dir, accounts.direct)
    engine = FaultEngine()
    if settings.faults:
        engine.set_plan(load_plan_file(settings.faults))
    db = Database(settings.db, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
    await require_current(db, SCHEMA)  # refuses a schema that is behind: `migrate` is a step of its own
    uow = SqlUnitOfWorkFactory(db)
    ctx = Context(
        uow=uow,
        wire=WireFormat(keys, direct_keys),
        faults=engine,
        accounts=accounts,
        refund_delay_s=settings.refund_delay,
    )
    targets = settings.notify_targets
    security = ServerSecurity.from_settings(settings.tls_dir, settings.auth_key_file)
    clients = [GrpcNotificationClient(target, ClientAuth(security.tls)) for target in targets]
    url_client = HttpNotificationClient(settings.notify_ca_file)
    notifier = Notifier(
        ctx,
        ReplicaSet(clients),
        schedule=settings.notify_schedule,
        timeout_s=settings.notify_timeout,
        idle_s=settings.idle_poll,
        sign_probe_rate=settings.sign_probe_rate,
        lease_s=settings.notify_timeout * max(1, len(targets)),  # every target may time out in turn
        url_client=url_client,
    )
    settler = RefundSettler(ctx, idle_s=settings.idle_poll)
    uow.on_commit = _waker(notifier, settler)
    faults = FaultInterceptor(engine)
    server = create_server(
        settings.listen,
        _registrars(ctx),
        interceptors=[
            *server_interceptors(),
            RequestContextInterceptor(),
            AdmissionInterceptor(
                AdmissionPolicy.of(
                    settings.max_concurrent_calls, settings.max_queued_calls, settings.max_queue_wait
                ),
                drop_gone=False,  # a simulated system processes late calls too (late success)
            ),
            faults,
        ],
        security=security,
    )

    async def drain_late_work() -> None:
        # LATE_SUCCESS work still pending runs now (bounded by grace), before the database closes.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(faults.drain(), settings.grace)

    http, tls = _http_server(settings, ctx, keys, direct_keys)
    closes = [client.close for client in clients] + [url_client.close]
    first = [] if http is None else [http.stop]  # no new HTTP request once the gRPC server stops
    server.on_stop.extend([*first, drain_late_work, notifier.stop, settler.stop, *closes, db.dispose])
    log.info(
        "wechat_configured",
        keys_dir=settings.keys_dir,
        merchant_bundle=str(merchant_bundle_dir(settings.keys_dir)),
        public_key_id=keys.public_key_id,
        sp_mchid=accounts.sp_mchid,
        direct_merchants={mchid: direct_keys[mchid].public_key_id for mchid in accounts.direct},
        notify_targets=list(targets),
        notify_schedule=list(settings.notify_schedule),
        refund_delay_s=settings.refund_delay,
        http_listen=settings.http_listen or None,
        http_tls=None if tls is None else ("throwaway " if tls.throwaway else "") + str(tls.cert_file),
        notify_ca_file=settings.notify_ca_file or None,
    )
    return WechatSimulator(server, ctx, engine, keys, notifier, settler, direct_keys, http, tls)


async def serve(settings: WechatSettings) -> None:
    simulator = await build(settings)
    await simulator.start()
    metrics = await start_metrics(settings.metrics_listen)
    if metrics is not None:
        simulator.grpc.on_stop.insert(0, metrics.stop)
    await wait_for_signal()
    await simulator.stop(settings.grace)
