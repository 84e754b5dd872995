"""The card system as a process (scripts.stack gives it ``--metrics-listen`` on a free loopback
port): ``/metrics`` counts the calls it served and the calls its policy refused."""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from protos.card.v1 import card_pb2, card_pb2_grpc
from rc_common.channels import aio_channel
from tests import auth
from tests.integration.card_service.conftest import MERCHANT, start_card_service

OPEN_CARD = "/card.v1.CardAdmin/OpenCard"


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient() as client:
        answer = await client.get(url)
    assert answer.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


async def test_the_card_process_counts_served_and_refused_calls_on_its_metrics_port(tmp_path: Path) -> None:
    service = start_card_service(tmp_path)
    try:
        assert service.metrics_port > 0
        async with aio_channel(service.address, auth.client()) as channel:
            await card_pb2_grpc.CardAdminStub(channel).OpenCard(
                card_pb2.OpenCardRequest(card_no="8800000000009001", merchant_id=MERCHANT), timeout=5
            )
        async with aio_channel(service.address) as anonymous:  # no token: refused by the policy
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await card_pb2_grpc.CardAdminStub(anonymous).OpenCard(
                    card_pb2.OpenCardRequest(card_no="8800000000009002", merchant_id=MERCHANT), timeout=5
                )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        samples = await scrape(service.metrics_url)
    finally:
        service.stop()
    served = ("rc_grpc_server_handled_total", frozenset({("grpc_method", OPEN_CARD), ("grpc_code", "OK")}))
    assert samples[served] == 1
    refusals = {
        dict(labels)["reason"]: count
        for (name, labels), count in samples.items()
        if name == "rc_calls_refused_total" and dict(labels)["grpc_method"] == OPEN_CARD
    }
    assert refusals == {"AUTHENTICATION_REQUIRED": 1}
