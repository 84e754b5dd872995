"""Health probes for GetOpsHealth: another system's gRPC health check, and the database.

Each probe answers within its deadline (less when the caller will give up sooner:
``rc_common.admission.budget``) and never raises: SERVING, NOT_SERVING (it answered so; the
database failed the query), or UNKNOWN (no answer in time, or no connection).
"""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text

from rc_common.admission import budget
from rc_common.db import Database
from recharge_service.adapters.repository import read
from recharge_service.service_layer.ops_health import NOT_SERVING, SERVING, UNKNOWN, SystemHealth
from recharge_service.service_layer.storage import StorageError

#: Seconds kept out of a caller's remaining time for the answer itself.
MARGIN = 0.1
_PING = text("SELECT 1")


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


class GrpcHealthProbe:
    """``grpc.health.v1.Health/Check`` (the whole server: service "") of ``target`` on ``channel``."""

    def __init__(self, name: str, channel: grpc.aio.Channel, target: str, deadline: float) -> None:
        self._name = name
        self._stub = health_pb2_grpc.HealthStub(channel)
        self._target = target
        self._deadline = deadline

    async def check(self) -> SystemHealth:
        deadline = budget(self._deadline, MARGIN)
        if deadline <= 0:
            return SystemHealth(self._name, UNKNOWN, 0, f"{self._target}: not asked (no time left)")
        started = time.perf_counter()
        try:
            reply = await self._stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=deadline)
        except grpc.aio.AioRpcError as error:
            code = error.code().name if error.code() is not None else "UNKNOWN"
            return SystemHealth(self._name, UNKNOWN, _since(started), f"{self._target}: {code}")
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        said = SERVING if status == SERVING else NOT_SERVING
        return SystemHealth(self._name, said, _since(started), f"{self._target}: {status}")


class DatabaseProbe:
    """``SELECT 1`` on the recharge center's database."""

    def __init__(self, db: Database, deadline: float) -> None:
        self._db = db
        self._deadline = deadline

    async def check(self) -> SystemHealth:
        name = "database"
        backend = self._db.url.get_backend_name()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(max(budget(self._deadline, MARGIN), 0.001)):
                await read(self._db, lambda conn: conn.execute(_PING).scalar_one())
        except TimeoutError:
            return SystemHealth(name, UNKNOWN, _since(started), f"{backend}: no answer in time")
        except StorageError:  # the query's error is the database's business, not the caller's
            return SystemHealth(name, NOT_SERVING, _since(started), f"{backend}: the query failed")
        return SystemHealth(name, SERVING, _since(started), backend)
