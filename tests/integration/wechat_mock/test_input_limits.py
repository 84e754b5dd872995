"""Issue 14, findings F5, F6, F9 on the WeChat simulator: every input answered INVALID_ARGUMENT
naming its field (never UNKNOWN), and the sent messages listed page by page."""

from __future__ import annotations

import base64
import json

import grpc
import pytest

from protos.faults.v1 import faults_pb2
from protos.wechatpay.v1 import wechatpay_pb2 as pb
from rc_common.grpc_status import error_field
from tests.integration.wechat_mock.fakes import Stubs


async def refused_field(call: object) -> str:
    """The field an INVALID_ARGUMENT answer names (fails on any other answer)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert "Error" not in (caught.value.details() or "")  # no exception class name
    return error_field(caught.value)


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1969-12-31"])
async def test_a_bill_date_out_of_range_is_refused_not_crashed_on(stubs: Stubs, day: str) -> None:
    """F6: 9999-12-31 used to answer UNKNOWN OverflowError."""
    request = pb.DownloadTradeBillRequest(bill_date=day)
    assert await refused_field(stubs.gateway.DownloadTradeBill(request, timeout=5)) == "bill_date"


@pytest.mark.parametrize(
    "time_expire", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00Z"]
)
async def test_a_time_expire_out_of_range_is_refused_not_crashed_on(stubs: Stubs, time_expire: str) -> None:
    """F6: a year-1 expiry with a +23:59 offset used to answer UNKNOWN."""
    assert await refused_field(stubs.prepay("F6-EXPIRE-1", time_expire=time_expire)) == "time_expire"


async def test_an_unknown_fault_kind_is_refused(stubs: Stubs) -> None:
    """F5: kind 99 used to answer UNKNOWN ValueError."""
    plan = faults_pb2.FaultPlan(rules=[faults_pb2.FaultRule(method="*", kind=99)])  # type: ignore[arg-type]
    assert await refused_field(stubs.faults.SetFaults(plan, timeout=5)) == "rules[0].kind"
    stats = await stubs.faults.GetFaultStats(faults_pb2.GetFaultStatsRequest(), timeout=5)
    assert list(stats.rules) == []  # nothing half-written


async def send(stubs: Stubs, openid: str, key: str) -> None:
    request = pb.SendTemplateMessageRequest(
        openid=openid, template_id="TPL", data={"k": key}, idempotency_key=key
    )
    await stubs.messages.SendTemplateMessage(request, timeout=5)


async def test_sent_messages_are_listed_page_by_page(stubs: Stubs) -> None:
    """F9: ListSentMessages used to answer every message at once (4 MB replies)."""
    keys = [f"F9-page-{n}" for n in range(7)]
    for key in keys:
        await send(stubs, "o-f9-pages", key)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        request = pb.ListSentMessagesRequest(openid="o-f9-pages", page_size=3, page_token=token)
        page = await stubs.messages.ListSentMessages(request, timeout=5)
        assert len(page.messages) <= 3
        seen += [m.idempotency_key for m in page.messages]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == keys and pages == 3


async def test_a_huge_page_size_is_capped_and_a_negative_one_refused(stubs: Stubs) -> None:
    await send(stubs, "o-f9-cap", "F9-cap-1")
    request = pb.ListSentMessagesRequest(openid="o-f9-cap", page_size=2**31 - 1)
    page = await stubs.messages.ListSentMessages(request, timeout=5)
    assert [m.idempotency_key for m in page.messages] == ["F9-cap-1"] and page.next_page_token == ""
    negative = pb.ListSentMessagesRequest(page_size=-1)
    assert await refused_field(stubs.messages.ListSentMessages(negative, timeout=5)) == "page_size"


@pytest.mark.parametrize(
    "token",
    [
        base64.urlsafe_b64encode(b"[" * 1000).decode(),
        base64.urlsafe_b64encode(json.dumps({"sent": ["2026-01-01T00:00:00+00:00", "M1"]}).encode()).decode(),
        "not a token",
    ],
)
async def test_a_forged_sent_messages_token_is_refused(stubs: Stubs, token: str) -> None:
    request = pb.ListSentMessagesRequest(page_token=token)
    assert await refused_field(stubs.messages.ListSentMessages(request, timeout=5)) == "page_token"


async def test_an_overlong_template_message_is_refused_and_not_stored(stubs: Stubs) -> None:
    request = pb.SendTemplateMessageRequest(openid="o-long", template_id="T" * 129, idempotency_key="F-long")
    assert await refused_field(stubs.messages.SendTemplateMessage(request, timeout=5)) == "template_id"
    listed = await stubs.messages.ListSentMessages(pb.ListSentMessagesRequest(openid="o-long"), timeout=5)
    assert list(listed.messages) == []
