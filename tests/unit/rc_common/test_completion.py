"""A handler whose caller gives up runs to its end (rc_common/completion.py), on a real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import grpc
import pytest

from protos.card.v1 import card_pb2, card_pb2_grpc
from rc_common.channels import aio_channel
from rc_common.completion import RunToCompletionInterceptor
from rc_common.server import create_server
from tests import auth
from tests.waiting import eventually


class SlowAdmin(card_pb2_grpc.CardAdminServicer):
    """OpenCard waits for the test's go, then records the card (a commit after the caller left)."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.entered = asyncio.Event()
        self.opened: list[str] = []

    async def OpenCard(
        self, request: card_pb2.OpenCardRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.Card:
        self.entered.set()
        await self.go.wait()
        self.opened.append(request.card_no)
        return card_pb2.Card(card_no=request.card_no)


async def served(
    admin: SlowAdmin, interceptors: Sequence[grpc.aio.ServerInterceptor]
) -> AsyncIterator[card_pb2_grpc.CardAdminStub]:
    def register(server: grpc.aio.Server) -> str:
        card_pb2_grpc.add_CardAdminServicer_to_server(admin, server)
        return "card.v1.CardAdmin"

    server = create_server("127.0.0.1:0", [register], interceptors=interceptors, security=auth.security())
    await server.start()
    try:
        async with aio_channel(server.address, auth.client()) as channel:
            yield card_pb2_grpc.CardAdminStub(channel)
    finally:
        await server.stop(0)


async def give_up_then_release(admin: SlowAdmin, stub: card_pb2_grpc.CardAdminStub) -> None:
    call = stub.OpenCard(card_pb2.OpenCardRequest(card_no="8800"), timeout=30)
    await asyncio.wait_for(admin.entered.wait(), 10)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.sleep(0.2)  # the server has seen the cancel
    admin.go.set()


async def test_a_call_whose_caller_gave_up_still_finishes() -> None:
    admin = SlowAdmin()
    interceptor = RunToCompletionInterceptor()
    async for stub in served(admin, [interceptor]):
        await give_up_then_release(admin, stub)
        await eventually(lambda: admin.opened == ["8800"])
        await eventually(lambda: interceptor.abandoned == 0)


async def test_without_it_the_cancel_cuts_the_work() -> None:
    """The failure the interceptor exists for: grpc.aio cancels the handler mid-flow."""
    admin = SlowAdmin()
    async for stub in served(admin, []):
        await give_up_then_release(admin, stub)
        await asyncio.sleep(0.3)
        assert admin.opened == []
