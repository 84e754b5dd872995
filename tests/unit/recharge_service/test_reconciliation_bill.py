"""The trade bill as the reconciliation reads it: WeChat's CSV file (APIv3) and the simulator's
gRPC answer give the same payments and refunds, to the fen."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import cast

import grpc
import pytest

from rc_common.outcomes import Done, Unknown
from recharge_service.adapters.reconcile_sides import GrpcSides, bill_from_csv, bill_from_proto
from recharge_service.adapters.wechatpay_v3 import TradeBill as TradeBillFile
from recharge_service.adapters.wechatpay_v3 import WechatPayV3Client
from recharge_service.domain.merchant import WechatAccount, WechatMode
from recharge_service.domain.reconciliation import BillPayment, BillRefund
from recharge_service.service_layer.reconcile import SideUnavailable
from wechat_mock.entrypoints.converters import trade_bill
from wechat_mock.entrypoints.http_documents import bill_file
from wechat_mock.service_layer.bills import BillRow, TradeBill

PAID = datetime(2026, 11, 29, 2, 0, 5, tzinfo=UTC)
REFUNDED = datetime(2026, 11, 29, 3, 30, tzinfo=UTC)
BILL = TradeBill(
    bill_date=date(2026, 11, 29),
    rows=[
        BillRow(PAID, "RC0001", "4200001", "SUCCESS", 100_001, "o-1", mchid="1900000201"),
        BillRow(
            REFUNDED,
            "RC0002",
            "4200002",
            "REFUND",
            20_000,
            "o-2",
            "RC0002-R1",
            "5000002",
            19_999,
            "SUCCESS",
            "1900000201",
        ),
    ],
    total_paid_fen=100_001,
    total_refunded_fen=19_999,
)
ACCOUNT = WechatAccount(WechatMode.PARTNER, "1900000201")
EXPECTED = (
    [BillPayment("RC0001", 100_001, PAID)],
    [BillRefund("RC0002", "RC0002-R1", 19_999, "SUCCESS", REFUNDED)],
)


def test_the_apiv3_csv_bill_reads_as_payments_and_refunds_to_the_fen() -> None:
    bill = bill_from_csv(bill_file(BILL))
    assert (bill.payments, bill.refunds) == EXPECTED
    assert bill.rows == 2


def test_the_simulators_grpc_bill_reads_the_same() -> None:
    bill = bill_from_proto(trade_bill(BILL))
    assert (bill.payments, bill.refunds) == EXPECTED


class FakeV3:
    """The APIv3 client's bill download, answering what the test says."""

    def __init__(self, outcome: object) -> None:
        self.outcome = outcome
        self.asked: list[tuple[str, float | None]] = []

    async def download_trade_bill(
        self, account: object, bill_date: str, *, deadline: float | None = None
    ) -> object:
        self.asked.append((bill_date, deadline))
        return self.outcome


def sides_over(v3: FakeV3) -> GrpcSides:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never called: the bill comes over APIv3
    return GrpcSides(channel, channel, "1900000109", 7.0, cast(WechatPayV3Client, v3))


async def test_over_apiv3_the_bill_file_is_read_within_the_reconcile_deadline() -> None:
    v3 = FakeV3(Done(TradeBillFile("SHA1", "", "", bill_file(BILL)), 3))
    bill = await sides_over(v3).trade_bill(ACCOUNT, "2026-11-29")
    assert (bill.payments, bill.refunds) == EXPECTED
    assert v3.asked == [("2026-11-29", 7.0)]


async def test_over_apiv3_a_bill_that_cannot_be_had_makes_the_side_unavailable() -> None:
    v3 = FakeV3(Unknown("DEADLINE_EXCEEDED", "client timeout", 7000))
    with pytest.raises(SideUnavailable, match="wechat bill"):
        await sides_over(v3).trade_bill(ACCOUNT, "2026-11-29")
