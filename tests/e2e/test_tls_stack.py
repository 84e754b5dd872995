"""The three services as processes with mutual TLS everywhere (``build_stack(tls=True)``: the
development CA of ``scripts.certs`` under the stack's ``tls/``): the recharge center reaches the
card system and WeChat with its certificate, WeChat's notifications reach it with WeChat's, the POS
demo tops up a card with the POS certificate, and the ops CLI works with its certificate and a
token — while a plaintext client gets nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.channels import TOKEN_ENV, aio_channel
from rc_common.grpc_status import error_reason
from scripts.merchants import direct_merchants_flag
from scripts.stack import ROOT, Stack, build_stack, start_stack
from tests.e2e.merchants import MERCHANTS, open_all


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("tls-stack")
    stack = start_stack(build_stack(workdir, wechat_args=direct_merchants_flag(MERCHANTS), tls=True))
    try:
        open_all(stack, MERCHANTS)
        yield stack
    finally:
        stack.stop()


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_a_pos_tops_up_a_card_over_mutual_tls(tls_stack: Stack) -> None:
    done = run(
        "scripts.pos_demo",
        *("--recharge", tls_stack.recharge.address, "--card", tls_stack.card.address),
        *("--wechat", tls_stack.wechat.address, "--tls-dir", str(tls_stack.tls_dir("pos"))),
        *("--merchant", MERCHANTS[0].merchant_id),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "status CREDITED" in done.stdout and "6. spent" in done.stdout


def test_the_ops_cli_needs_its_certificate_and_a_token(tls_stack: Stack) -> None:
    target = ("--target", tls_stack.recharge.address)
    tls = ("--tls-dir", str(tls_stack.tls_dir("ops")))
    token = {TOKEN_ENV: tls_stack.token_path.read_text().strip()}
    listed = run("recharge_service.ops", *target, *tls, "merchant-list", env=token)
    assert listed.returncode == 0, listed.stderr
    assert MERCHANTS[0].merchant_id in listed.stdout
    no_token = run("recharge_service.ops", *target, *tls, "merchant-list", env={TOKEN_ENV: ""})
    assert no_token.returncode == 1 and "PERMISSION_DENIED" in no_token.stderr
    no_cert = run("recharge_service.ops", *target, "merchant-list", env=token)
    assert no_cert.returncode == 1 and "UNAVAILABLE" in no_cert.stderr


async def test_a_plaintext_client_is_not_served_and_a_pos_certificate_is_not_an_operator(
    tls_stack: Stack,
) -> None:
    request = recharge_pb2.ListMerchantsRequest()
    async with aio_channel(tls_stack.recharge.address) as plaintext:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await recharge_pb2_grpc.RechargeOpsStub(plaintext).ListMerchants(request, timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    async with aio_channel(tls_stack.recharge.address, tls_stack.client_auth("pos", token=False)) as pos:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await recharge_pb2_grpc.RechargeOpsStub(pos).ListMerchants(request, timeout=10)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_reason(denied.value) == "ROLE_REQUIRED"
    async with aio_channel(tls_stack.recharge.address, tls_stack.client_auth("ops")) as operator:
        listed = await recharge_pb2_grpc.RechargeOpsStub(operator).ListMerchants(request, timeout=10)
    assert {m.merchant_id for m in listed.merchants} >= {m.merchant_id for m in MERCHANTS}
