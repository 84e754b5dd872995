"""Issue 14's input findings, each reproduced against the running stack: every answer is a
deliberate one (INVALID_ARGUMENT naming the field, or Notify's FAIL), never UNKNOWN, and no
detail carries an exception class name or SQL (F8)."""

from __future__ import annotations

import base64
import json
import time

import grpc
import pytest
from google.protobuf.message import Message

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from rc_common import wechatpay_crypto as crypto
from recharge_service.adapters.wechat_notifications import load_keys
from scripts.stack import Stack
from tests.fuzz.calls import SERVED, Answer, Caller, Rpc
from tests.fuzz.checks import LEAK
from tests.fuzz.conftest import Known

DEEP = "[" * 1000


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def rpc(target: str, service: str, method: str) -> Rpc:
    descriptor = next(s for t, s in SERVED if t == target and s.name == service)
    return Rpc(target, descriptor.methods_by_name[method])


def refused(caller: Caller, target: str, service: str, method: str, request: Message) -> str:
    """The field an INVALID_ARGUMENT answer names; fails on any other answer or a leak."""
    answer: Answer = caller.send(rpc(target, service, method), request, timeout=10)
    assert answer.code is grpc.StatusCode.INVALID_ARGUMENT, answer
    assert not LEAK.search(answer.details), answer.details
    return answer.details.partition(":")[0]


def test_f1_a_deeply_nested_notification_body_is_answered_fail(caller: Caller, fuzz_stack: Stack) -> None:
    """Used to answer UNKNOWN RecursionError, without headers and with our serial."""
    serial = load_keys(fuzz_stack.merchant_keys_dir).public_key_id
    signed_looking = {
        crypto.HEADER_SERIAL: serial,
        crypto.HEADER_SIGNATURE: base64.b64encode(b"x" * 256).decode(),
        crypto.HEADER_TIMESTAMP: str(int(time.time())),
        crypto.HEADER_NONCE: "n",
        "Wechatpay-Signature-Type": crypto.SIGNATURE_TYPE,
    }
    for headers in ({}, signed_looking):
        request = wechatpay_pb2.NotifyRequest(headers=headers, body=DEEP.encode())
        answer = caller.send(rpc("recharge", "PaymentNotifications", "Notify"), request, timeout=10)
        assert answer.code is grpc.StatusCode.OK, answer
        assert wechatpay_pb2.NotifyAck.FromString(answer.response).code == "FAIL"


@pytest.mark.parametrize(
    "token",
    [
        b64(DEEP),  # F1
        b64('{"after":["2026-01-01T00:00:00","R1"]}'),  # F3: reached SQL, the statement in the details
        b64('{"after":["2026-01-01T00:00:00+00:00","R1"]}'),  # well-formed, but not ours (no MAC)
    ],
)
def test_f1_f3_a_forged_page_token_is_invalid_argument(caller: Caller, known: Known, token: str) -> None:
    merchant_id = known.values["merchant_id"][0]
    page = recharge_pb2.PageRequest(page_token=token)
    anomalies = recharge_pb2.ListAnomaliesRequest(page=page, merchant_id=merchant_id)
    orders = recharge_pb2.ListRechargeOrdersRequest(page=page, merchant_id=merchant_id)
    assert refused(caller, "recharge", "RechargeOps", "ListAnomalies", anomalies) == "page.page_token"
    assert refused(caller, "recharge", "RechargeCenter", "ListRechargeOrders", orders) == "page.page_token"


def test_f2_an_int64_max_age_is_invalid_argument(caller: Caller) -> None:
    request = recharge_pb2.ListAnomaliesRequest(min_age_seconds=2**63 - 1)
    assert refused(caller, "recharge", "RechargeOps", "ListAnomalies", request) == "min_age_seconds"


def test_f2_a_journal_token_past_int64_is_invalid_argument(caller: Caller, known: Known) -> None:
    card_no, merchant_id = next(iter(known.cards.items()))
    for payload in (json.dumps({"journal": [card_no, "9223372036854775808"]}), DEEP):
        request = card_pb2.ListJournalRequest(
            card_no=card_no, page_token=b64(payload), merchant_id=merchant_id
        )
        assert refused(caller, "card", "CardSystem", "ListJournal", request) == "page_token"


@pytest.mark.parametrize("target", ["card", "wechat"])
def test_f5_an_unknown_fault_kind_is_invalid_argument(caller: Caller, target: str) -> None:
    plan = faults_pb2.FaultPlan(rules=[faults_pb2.FaultRule(method="*", kind=99)])  # type: ignore[arg-type]
    assert refused(caller, target, "FaultControl", "SetFaults", plan) == "rules[0].kind"


def test_f6_dates_out_of_range_are_invalid_argument(caller: Caller, known: Known) -> None:
    bill = wechatpay_pb2.DownloadTradeBillRequest(bill_date="9999-12-31")
    assert refused(caller, "wechat", "PaymentGateway", "DownloadTradeBill", bill) == "bill_date"
    prepay = wechatpay_pb2.CreatePrepayRequest(
        out_trade_no="F6EXPIRE01",
        description="d",
        amount_total_fen=100,
        payer_openid="o-f6",
        time_expire="0001-01-01T00:00:00+23:59",
        merchant=wechatpay_pb2.MerchantRef(
            sp_mchid=known.values["sp_mchid"][0], sub_mchid=known.values["sub_mchid"][0]
        ),
    )
    assert refused(caller, "wechat", "PaymentGateway", "CreatePrepay", prepay) == "time_expire"
