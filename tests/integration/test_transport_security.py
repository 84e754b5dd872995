"""Mutual TLS with the development CA (``scripts.certs``): a server on 127.0.0.1:0 with
``--tls-dir`` semantics, clients with and without certificates, and the refusal to serve plaintext
on a public address (in process and as ``python -m card_service``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.card.v1 import card_pb2, card_pb2_grpc
from rc_common.access import ServerSecurity
from rc_common.auth import OPERATOR, Principal, current_principal
from rc_common.channels import ClientAuth, aio_channel
from rc_common.grpc_status import error_reason
from rc_common.server import GrpcServer, create_server
from rc_common.tls import TlsConfigError, TlsFiles
from scripts.certs import make_certs
from scripts.stack import ROOT
from tests import auth


class RecordingCards(card_pb2_grpc.CardSystemServicer):  # type: ignore[misc]
    """Answers GetCard and PreRecharge; records who the policy said was calling."""

    def __init__(self) -> None:
        self.callers: list[Principal | None] = []

    async def GetCard(self, request: Any, context: Any) -> card_pb2.Card:
        self.callers.append(current_principal())
        return card_pb2.Card(card_no=request.card_no, balance_fen=100)

    async def PreRecharge(self, request: Any, context: Any) -> card_pb2.PreRecharge:
        self.callers.append(current_principal())
        return card_pb2.PreRecharge(order_no=request.order_no)


class RecordingAdmin(card_pb2_grpc.CardAdminServicer):  # type: ignore[misc]
    async def OpenCard(self, request: Any, context: Any) -> card_pb2.Card:
        return card_pb2.Card(card_no=request.card_no)


async def get_card(channel: grpc.aio.Channel) -> card_pb2.Card:
    reply: card_pb2.Card = await card_pb2_grpc.CardSystemStub(channel).GetCard(
        card_pb2.GetCardRequest(card_no="1"), timeout=5
    )
    return reply


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    make_certs(out)
    return out


def tls(certs: Path, identity: str) -> TlsFiles:
    return TlsFiles.load(certs / identity)


async def serve(security: ServerSecurity, cards: RecordingCards) -> GrpcServer:
    def register_cards(server: grpc.aio.Server) -> str:
        card_pb2_grpc.add_CardSystemServicer_to_server(cards, server)
        return "card.v1.CardSystem"

    def register_admin(server: grpc.aio.Server) -> str:
        card_pb2_grpc.add_CardAdminServicer_to_server(RecordingAdmin(), server)
        return "card.v1.CardAdmin"

    server = create_server("127.0.0.1:0", [register_cards, register_admin], security=security)
    await server.start()
    return server


@pytest.fixture
async def cards() -> RecordingCards:
    return RecordingCards()


@pytest.fixture
async def tls_server(certs: Path, cards: RecordingCards) -> AsyncIterator[GrpcServer]:
    server = await serve(ServerSecurity(tls=tls(certs, "card"), auth_key=auth.KEY), cards)
    try:
        yield server
    finally:
        await server.stop(0)


async def test_the_recharge_center_s_certificate_is_its_identity(
    tls_server: GrpcServer, certs: Path, cards: RecordingCards
) -> None:
    async with aio_channel(tls_server.address, ClientAuth(tls(certs, "recharge"))) as channel:
        stub = card_pb2_grpc.CardSystemStub(channel)
        reply = await stub.PreRecharge(card_pb2.PreRechargeRequest(order_no="R1"), timeout=5)
    assert reply.order_no == "R1"
    assert cards.callers == [Principal(service="recharge")]


async def test_a_certificate_is_not_a_licence_for_everything(tls_server: GrpcServer, certs: Path) -> None:
    async with aio_channel(tls_server.address, ClientAuth(tls(certs, "pos"))) as channel:
        stub = card_pb2_grpc.CardSystemStub(channel)
        assert (await stub.GetCard(card_pb2.GetCardRequest(card_no="1"), timeout=5)).balance_fen == 100
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.PreRecharge(card_pb2.PreRechargeRequest(order_no="R1"), timeout=5)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_reason(refused.value) == "CALLER_NOT_ALLOWED"
        assert "PreRecharge" in (refused.value.details() or "")
    counted = ("/card.v1.CardSystem/PreRecharge", "PERMISSION_DENIED", "CALLER_NOT_ALLOWED")
    assert tls_server.access.refusals[counted] == 1


async def test_over_tls_an_operator_still_needs_a_token(tls_server: GrpcServer, certs: Path) -> None:
    ops_cert = tls(certs, "ops")
    request = card_pb2.OpenCardRequest(card_no="62")
    async with aio_channel(tls_server.address, ClientAuth(ops_cert)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await card_pb2_grpc.CardAdminStub(channel).OpenCard(request, timeout=5)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with_token = ClientAuth(ops_cert, auth.token([OPERATOR], subject="carol"))
    async with aio_channel(tls_server.address, with_token) as channel:
        assert (await card_pb2_grpc.CardAdminStub(channel).OpenCard(request, timeout=5)).card_no == "62"


async def test_a_client_without_a_certificate_is_refused_at_the_handshake(
    tls_server: GrpcServer, certs: Path, cards: RecordingCards
) -> None:
    ca_only = grpc.ssl_channel_credentials(root_certificates=(certs / "ca.crt").read_bytes())
    async with grpc.aio.secure_channel(tls_server.address, ca_only) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await get_card(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    async with grpc.aio.insecure_channel(tls_server.address) as channel:  # plaintext to a TLS port
        with pytest.raises(grpc.aio.AioRpcError) as plaintext:
            await get_card(channel)
    assert plaintext.value.code() == grpc.StatusCode.UNAVAILABLE
    assert cards.callers == []


async def test_a_certificate_from_another_ca_is_refused(
    tls_server: GrpcServer, tmp_path: Path, certs: Path, cards: RecordingCards
) -> None:
    make_certs(tmp_path / "other", ["recharge"])
    stranger = TlsFiles.load(tmp_path / "other" / "recharge")
    # It trusts our CA (so it could verify the server) but its own certificate is not ours.
    mixed = TlsFiles(ca=(certs / "ca.crt").read_bytes(), cert=stranger.cert, key=stranger.key)
    async with aio_channel(tls_server.address, ClientAuth(mixed)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await get_card(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert cards.callers == []


async def test_health_answers_any_certified_client(tls_server: GrpcServer, certs: Path) -> None:
    async with aio_channel(tls_server.address, ClientAuth(tls(certs, "pos"))) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_server_without_tls_refuses_to_listen_on_a_public_address(cards: RecordingCards) -> None:
    with pytest.raises(TlsConfigError, match="without TLS"):
        create_server("0.0.0.0:0", [], security=ServerSecurity())


def test_a_service_started_on_0_0_0_0_without_tls_dir_refuses_to_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "card_service", "--listen", "0.0.0.0:0", "--db", f"sqlite+aiosqlite:///{tmp_path}/c.db"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--tls-dir: refusing to listen on 0.0.0.0:0 without TLS" in done.stderr


def test_a_tls_dir_missing_a_file_stops_the_service_with_its_name(tmp_path: Path, certs: Path) -> None:
    folder = tmp_path / "card"
    folder.mkdir()
    (folder / "ca.crt").write_bytes((certs / "ca.crt").read_bytes())
    (folder / "tls.crt").write_bytes((certs / "card" / "tls.crt").read_bytes())
    db = f"sqlite+aiosqlite:///{tmp_path}/c.db"
    migrated = subprocess.run(
        [sys.executable, "-m", "card_service", "migrate", "--db", db],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert migrated.returncode == 0
    args = ["--listen", "127.0.0.1:0", "--db", db, "--tls-dir", str(folder)]
    done = subprocess.run(
        [sys.executable, "-m", "card_service", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "security_refused" in done.stdout + done.stderr and "tls.key" in done.stdout + done.stderr


async def test_without_a_key_file_no_token_is_accepted(cards: RecordingCards) -> None:
    server = await serve(ServerSecurity(), cards)  # development mode, no --auth-key-file
    try:
        async with aio_channel(server.address, auth.client([OPERATOR])) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                admin = card_pb2_grpc.CardAdminStub(channel)
                await admin.OpenCard(card_pb2.OpenCardRequest(card_no="62"), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_reason(refused.value) == "TOKEN_UNVERIFIABLE"
        async with aio_channel(server.address) as anonymous:  # what anonymous loopback callers may do
            assert (await get_card(anonymous)).balance_fen == 100
    finally:
        await server.stop(0)
