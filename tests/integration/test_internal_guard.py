"""The last resort of ``maps_errors`` (issue 14, F8): a handler that fails in a way nobody planned
for answers INTERNAL with reason INTERNAL and a generic message — never UNKNOWN, never the
exception's class name or text — and the traceback goes to the server's log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from structlog.testing import capture_logs

from protos.faults.v1 import faults_pb2, faults_pb2_grpc
from rc_common.channels import aio_channel
from rc_common.errors import InvalidArgument
from rc_common.grpc_status import INTERNAL_MESSAGE, error_field, error_reason, maps_errors
from rc_common.server import create_server
from tests import auth


class Broken(faults_pb2_grpc.FaultControlServicer):
    """SetFaults fails like a bug (the SQL in its text must not reach the caller); ClearFaults
    refuses deliberately; GetFaultStats answers."""

    @maps_errors
    async def SetFaults(
        self, request: faults_pb2.FaultPlan, context: grpc.aio.ServicerContext
    ) -> faults_pb2.FaultStats:
        raise OverflowError("SELECT * FROM cards WHERE balance_fen > 9223372036854775808")

    @maps_errors
    async def ClearFaults(
        self, request: faults_pb2.ClearFaultsRequest, context: grpc.aio.ServicerContext
    ) -> faults_pb2.FaultStats:
        raise InvalidArgument("seed", "must be even")

    @maps_errors
    async def GetFaultStats(
        self, request: faults_pb2.GetFaultStatsRequest, context: grpc.aio.ServicerContext
    ) -> faults_pb2.FaultStats:
        return faults_pb2.FaultStats(total=7)


@pytest.fixture
async def stub() -> AsyncIterator[faults_pb2_grpc.FaultControlStub]:
    def register(server: grpc.aio.Server) -> str:
        faults_pb2_grpc.add_FaultControlServicer_to_server(Broken(), server)
        return "faults.v1.FaultControl"

    built = create_server("127.0.0.1:0", [register], security=auth.security())
    await built.start()
    try:
        async with aio_channel(built.address, auth.client()) as channel:
            yield faults_pb2_grpc.FaultControlStub(channel)
    finally:
        await built.stop(0)


async def test_an_unexpected_exception_answers_internal_without_its_text(
    stub: faults_pb2_grpc.FaultControlStub,
) -> None:
    with capture_logs() as logs, pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SetFaults(faults_pb2.FaultPlan(), timeout=5)
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert caught.value.details() == INTERNAL_MESSAGE
    assert error_reason(caught.value) == "INTERNAL"
    assert "SELECT" not in str(caught.value.trailing_metadata())
    failed = [e for e in logs if e["event"] == "handler_failed"]
    assert failed and failed[0]["method"] == "SetFaults" and failed[0]["exc_info"] is True


async def test_deliberate_answers_pass_through_the_guard(stub: faults_pb2_grpc.FaultControlStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ClearFaults(faults_pb2.ClearFaultsRequest(), timeout=5)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and error_field(caught.value) == "seed"
    assert (await stub.GetFaultStats(faults_pb2.GetFaultStatsRequest(), timeout=5)).total == 7
