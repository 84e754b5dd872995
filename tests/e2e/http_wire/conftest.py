"""The three real services on the HTTP wire (``build_stack(wire="http")``): the recharge center pays
through WeChat Pay APIv3 over HTTPS (the simulator's facade) and takes WeChat's notifications on its
HTTPS endpoint. Two demo merchants (direct and partner mode), plus a direct merchant whose bundle
holds the wrong WeChat Pay public key (every answer to it fails verification), a short sentinel and
short WeChat schedules; the flow's clients (tests/e2e/recharge_flow/conftest.py) act for them."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.channels import aio_channel
from scripts.merchants import DemoMerchant, direct_merchants_flag
from scripts.stack import Stack, build_stack, start_stack
from tests.e2e.merchants import DIRECT, configured, open_all
from tests.e2e.recharge_flow.conftest import (  # noqa: F401 (fixtures used by the tests)
    Clients,
    connected,
    created_orders,
    receiver,
)
from wechat_mock.adapters.keys import merchant_bundle_dir

#: A direct-mode merchant the simulator knows, whose bundle in the recharge center carries another
#: merchant's WeChat Pay public key (under its own key id): no answer about it verifies.
MISMATCHED = DemoMerchant(
    merchant_id="wire-mismatched",
    display_name="Mismatched keys (direct)",
    mode="direct",
    mchid="1900000311",
    appid="wx3131313131313131",
    rule=DIRECT.rule,
    cards=(),
)
MISMATCHED_BUNDLE = "mismatched-bundle"
VOID_DELAY_S = 600  # the mismatched merchant's unknown create is not closed during a test


def wrong_key_bundle(stack: Stack, workdir: Path) -> Path:
    """A copy of MISMATCHED's bundle with DIRECT's WeChat Pay public key in place of its own."""
    real = merchant_bundle_dir(stack.keys_dir, MISMATCHED.mchid)
    copy = workdir / MISMATCHED_BUNDLE
    shutil.copytree(real, copy)
    other = merchant_bundle_dir(stack.keys_dir, DIRECT.mchid) / "platform_public_key.pem"
    assert other.read_bytes() != (copy / "platform_public_key.pem").read_bytes()
    shutil.copyfile(other, copy / "platform_public_key.pem")
    return copy


async def put_mismatched(stack: Stack, bundle: Path) -> None:
    """Point MISMATCHED's configuration at ``bundle`` (as an operator would, by PutMerchant)."""
    async with aio_channel(stack.recharge.address, stack.client_auth()) as channel:
        ops = recharge_pb2_grpc.RechargeOpsStub(channel)
        current = await ops.GetMerchant(
            recharge_pb2.GetMerchantRequest(merchant_id=MISMATCHED.merchant_id), timeout=5
        )
        merchant = MISMATCHED.message(stack.keys_dir)
        merchant.wechat.keys_dir = str(bundle)
        await ops.PutMerchant(
            recharge_pb2.PutMerchantRequest(
                merchant=merchant,
                expected_version=current.merchant.version,
                operator="e2e",
                reason="the wrong WeChat Pay public key, on purpose",
            ),
            timeout=10,
        )


@pytest.fixture(scope="package")
def wire_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("http-wire")
    merchants = (*configured(), MISMATCHED)
    stack = build_stack(
        workdir,
        wire="http",
        recharge_args=[
            *("--hold", "1", "--sentinel-interval", "0.5", "--void-delay", str(VOID_DELAY_S)),
            *("--confirm-attempts", "3", "--confirm-backoff", "0.05", "--confirm-deadline", "1"),
            *("--remote-attempts", "2", "--remote-backoff", "0.05", "--remote-deadline", "2"),
            *("--outbox-interval", "0.2", "--outbox-backoff", "0.1", "--outbox-backoff-max", "0.5"),
        ],
        wechat_args=[
            *("--notify-schedule", "0.2,0.3,0.5,1,1,2", "--refund-delay", "0.3", "--idle-poll", "0.2"),
            *direct_merchants_flag(merchants),
        ],
    )
    running = start_stack(stack)
    try:
        open_all(running, merchants)
        asyncio.run(put_mismatched(running, wrong_key_bundle(running, workdir)))
        yield running
    finally:
        running.stop()


@pytest.fixture
def merchant() -> DemoMerchant:
    return DIRECT


@pytest.fixture
async def clients(
    wire_stack: Stack, merchant: DemoMerchant, created_orders: dict[str, DemoMerchant]  # noqa: F811
) -> AsyncIterator[Clients]:
    async with connected(Clients, wire_stack, merchant, created_orders) as built:
        yield built


def wechat_events(stack: Stack, event: str, **match: Any) -> list[dict[str, Any]]:
    """The simulator's log events called ``event`` whose fields include ``match``."""
    found = []
    for line in stack.wechat.log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event and all(record.get(k) == v for k, v in match.items()):
            found.append(record)
    return found

