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
from rc_common.migrations import require_current
from rc_common.server import GrpcServer, Registrar, create_server, wait_for_signal
from wechat_mock.adapters.keys import PlatformKeys, ensure_direct_keys, ensure_keys, merchant_bundle_dir
from wechat_mock.adapters.notification_client import GrpcNotificationClient
from wechat_mock.adapters.unit_of_work import SqlUnitOfWorkFactory
from wechat_mock.domain.merchants import Accounts
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
    _stopped: bool = False

    @property
    def address(self) -> str:
        return self.grpc.address

    @property
    def port(self) -> int:
        return self.grpc.port

    async def start(self) -> None:
        await self.grpc.start()
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
    notifier = Notifier(
        ctx,
        ReplicaSet(clients),
        schedule=settings.notify_schedule,
        timeout_s=settings.notify_timeout,
        idle_s=settings.idle_poll,
        sign_probe_rate=settings.sign_probe_rate,
        lease_s=settings.notify_timeout * max(1, len(targets)),  # every target may time out in turn
    )
    settler = RefundSettler(ctx, idle_s=settings.idle_poll)
    uow.on_commit = _waker(notifier, settler)
    faults = FaultInterceptor(engine)
    server = create_server(
        settings.listen,
        _registrars(ctx),
        interceptors=[
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

    closes = [client.close for client in clients]
    server.on_stop.extend([drain_late_work, notifier.stop, settler.stop, *closes, db.dispose])
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
    )
    return WechatSimulator(server, ctx, engine, keys, notifier, settler, direct_keys)


async def serve(settings: WechatSettings) -> None:
    simulator = await build(settings)
    await simulator.start()
    await wait_for_signal()
    await simulator.stop(settings.grace)
