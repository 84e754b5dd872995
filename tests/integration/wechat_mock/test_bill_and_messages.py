"""The trade bill (every payment and refund of a day) and template messages (idempotent by key)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from protos.wechatpay.v1 import wechatpay_pb2 as pb
from rc_common.clock import CHINA
from rc_common.grpc_status import error_field
from tests.integration.wechat_mock.fakes import Stubs
from tests.waiting import eventually


async def bill(stubs: Stubs, day: str) -> pb.DownloadTradeBillResponse:
    return await stubs.gateway.DownloadTradeBill(pb.DownloadTradeBillRequest(bill_date=day), timeout=10)


async def test_trade_bill_lists_the_days_payments_and_refunds(stubs: Stubs) -> None:
    first = await stubs.paid("TB-0001", 300)
    second = await stubs.paid("TB-0002", 500)
    await stubs.prepay("TB-0003", 700)  # never paid: not in the bill
    refund = await stubs.refund("TB-0002", "TB-0002-r", 200, 500)
    await eventually(lambda: _refund_succeeded(stubs, "TB-0002-r"))
    day = first.success_time[:10]  # the payment's date in Shanghai time
    answer = await bill(stubs, day)
    assert answer.bill_date == day
    rows = [(r.trade_state, r.out_trade_no, r.refund_status) for r in answer.rows]
    assert rows == [("SUCCESS", "TB-0001", ""), ("SUCCESS", "TB-0002", ""), ("REFUND", "TB-0002", "SUCCESS")]
    paid_rows = {r.out_trade_no: r for r in answer.rows if r.trade_state == "SUCCESS"}
    assert paid_rows["TB-0001"].transaction_id == first.transaction_id
    assert paid_rows["TB-0002"].amount_total_fen == 500
    assert paid_rows["TB-0001"].trade_time == first.success_time
    refund_row = answer.rows[2]
    assert (refund_row.out_refund_no, refund_row.refund_id, refund_row.refund_fen) == (
        "TB-0002-r", refund.refund_id, 200
    )
    assert refund_row.transaction_id == second.transaction_id
    assert (answer.total_paid_fen, answer.total_refunded_fen) == (800, 200)


async def _refund_succeeded(stubs: Stubs, out_refund_no: str) -> bool:
    return (await stubs.query_refund(out_refund_no)).status == pb.REFUND_STATUS_SUCCESS


async def test_trade_bill_of_another_day_is_empty(stubs: Stubs) -> None:
    await stubs.paid("TB-0004", 300)
    yesterday = (datetime.now(UTC).astimezone(CHINA).date() - timedelta(days=1)).isoformat()
    answer = await bill(stubs, yesterday)
    assert list(answer.rows) == [] and answer.total_paid_fen == 0


@pytest.mark.parametrize("day", ["2026/11/26", "yesterday", ""])
async def test_trade_bill_date_must_be_yyyy_mm_dd(stubs: Stubs, day: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bill(stubs, day)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_field(caught.value) == "bill_date"


def message(openid: str, key: str, amount: str = "100") -> pb.SendTemplateMessageRequest:
    return pb.SendTemplateMessageRequest(
        openid=openid, template_id="TPL_RECHARGE_OK", data={"amount": amount}, idempotency_key=key
    )


async def test_the_same_idempotency_key_collapses_into_the_first_message(stubs: Stubs) -> None:
    first = await stubs.messages.SendTemplateMessage(message("o-alice", "RC-1:credited"), timeout=5)
    again = await stubs.messages.SendTemplateMessage(message("o-alice", "RC-1:credited"), timeout=5)
    assert first.first_delivery and not again.first_delivery
    assert again.msgid == first.msgid
    listed = await stubs.messages.ListSentMessages(pb.ListSentMessagesRequest(openid="o-alice"), timeout=5)
    (sent,) = listed.messages
    assert (sent.msgid, sent.send_count, dict(sent.data)) == (first.msgid, 2, {"amount": "100"})
    assert sent.sent_at.endswith("+08:00")


async def test_messages_are_listed_per_customer_or_all(stubs: Stubs) -> None:
    await stubs.messages.SendTemplateMessage(message("o-alice", "k1"), timeout=5)
    await stubs.messages.SendTemplateMessage(message("o-bob", "k2"), timeout=5)
    await stubs.messages.SendTemplateMessage(message("o-bob", ""), timeout=5)
    await stubs.messages.SendTemplateMessage(message("o-bob", ""), timeout=5)
    bob = await stubs.messages.ListSentMessages(pb.ListSentMessagesRequest(openid="o-bob"), timeout=5)
    everyone = await stubs.messages.ListSentMessages(pb.ListSentMessagesRequest(), timeout=5)
    assert len(bob.messages) == 3 and {m.openid for m in bob.messages} == {"o-bob"}
    assert len(everyone.messages) == 4


async def test_a_message_needs_an_openid(stubs: Stubs) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.messages.SendTemplateMessage(message("", "k"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_field(caught.value) == "openid"
