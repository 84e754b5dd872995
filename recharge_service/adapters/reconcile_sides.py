"""The reconciliation's remote sides: WeChat's trade bill (the simulator's gRPC ``DownloadTradeBill``,
or APIv3's bill file) and the card system's journal export and pre-recharges (gRPC).

Read-only calls, not an order's steps: no timeline rows, one attempt each within the reconcile
deadline. Anything but an answer is :class:`SideUnavailable` (the run is FAILED and re-run later).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import grpc

from protos.card.v1 import card_pb2, card_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.business_day import BUSINESS_TZ
from rc_common.outcomes import Done
from recharge_service.adapters.wechatpay_v3 import WechatPayV3Client
from recharge_service.domain.merchant import WechatAccount, WechatMode
from recharge_service.domain.reconciliation import BillPayment, BillRefund, CardCredit
from recharge_service.service_layer.reconcile import Bill, SideUnavailable

RECHARGE_KINDS = {
    card_pb2.JOURNAL_KIND_RECHARGE_PRINCIPAL: "RECHARGE_PRINCIPAL",
    card_pb2.JOURNAL_KIND_RECHARGE_BONUS: "RECHARGE_BONUS",
}
_RECHARGE_STATUS = {
    card_pb2.PRE_RECHARGE_STATUS_RECHARGING: "RECHARGING",
    card_pb2.PRE_RECHARGE_STATUS_SUCCEEDED: "SUCCEEDED",
    card_pb2.PRE_RECHARGE_STATUS_VOIDED: "VOIDED",
}
EXPORT_PAGE_SIZE = 1000


def _rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def bill_from_proto(answer: wechatpay_pb2.DownloadTradeBillResponse) -> Bill:
    payments: list[BillPayment] = []
    refunds: list[BillRefund] = []
    for row in answer.rows:
        at = _rfc3339(row.trade_time)
        if row.out_refund_no:
            refunds.append(
                BillRefund(row.out_trade_no, row.out_refund_no, row.refund_fen, row.refund_status, at)
            )
        else:
            payments.append(BillPayment(row.out_trade_no, row.amount_total_fen, at))
    return Bill(payments, refunds)


def _fen(yuan: str) -> int:
    try:
        return int((Decimal(yuan) * 100).to_integral_exact())
    except (InvalidOperation, ArithmeticError) as exc:
        raise SideUnavailable("wechat bill", f"not an amount: {yuan!r}") from exc


def bill_from_csv(content: bytes) -> Bill:
    """WeChat's ``ALL`` trade bill CSV (values prefixed with a backtick, amounts in yuan, times in
    +08:00), up to its summary header."""
    payments: list[BillPayment] = []
    refunds: list[BillRefund] = []
    reader = csv.reader(io.StringIO(content.decode("utf-8-sig")))
    next(reader, None)  # the header
    for raw in reader:
        values = [value.removeprefix("`") for value in raw]
        if len(values) < 20:
            break  # the summary header: the rows are over
        at = datetime.fromisoformat(values[0]).replace(tzinfo=BUSINESS_TZ)
        if values[15]:
            refunds.append(BillRefund(values[6], values[15], _fen(values[16]), values[19], at))
        else:
            payments.append(BillPayment(values[6], _fen(values[12]), at))
    return Bill(payments, refunds)


class GrpcSides:
    """``sp_mchid``: the provider's mchid, named with a partner-mode merchant's sub_mchid."""

    def __init__(
        self,
        card_channel: grpc.aio.Channel,
        payment_channel: grpc.aio.Channel,
        sp_mchid: str,
        deadline: float,
        v3: WechatPayV3Client | None = None,
    ) -> None:
        self._admin = card_pb2_grpc.CardAdminStub(card_channel)
        self._card = card_pb2_grpc.CardSystemStub(card_channel)
        self._gateway = wechatpay_pb2_grpc.PaymentGatewayStub(payment_channel)
        self._sp_mchid = sp_mchid
        self._deadline = deadline
        self._v3 = v3

    def _ref(self, account: WechatAccount) -> wechatpay_pb2.MerchantRef:
        if account.mode is WechatMode.DIRECT:
            return wechatpay_pb2.MerchantRef(mchid=account.mchid)
        return wechatpay_pb2.MerchantRef(sp_mchid=self._sp_mchid, sub_mchid=account.mchid)

    async def trade_bill(self, account: WechatAccount, day: str) -> Bill:
        if self._v3 is not None:
            outcome = await self._v3.download_trade_bill(account, day, deadline=self._deadline)
            if not isinstance(outcome, Done):
                raise SideUnavailable("wechat bill", f"{type(outcome).__name__}: {outcome}")
            return bill_from_csv(outcome.value.content)
        request = wechatpay_pb2.DownloadTradeBillRequest(bill_date=day, merchant=self._ref(account))
        try:
            answer = await self._gateway.DownloadTradeBill(request, timeout=self._deadline)
        except grpc.aio.AioRpcError as exc:
            raise SideUnavailable("wechat bill", f"{exc.code().name}: {exc.details()}") from exc
        return bill_from_proto(answer)

    async def card_credits(self, day: str, merchant_id: str) -> list[CardCredit]:
        credits: list[CardCredit] = []
        token = ""
        while True:
            request = card_pb2.ExportJournalRequest(
                date=day, merchant_id=merchant_id, page_size=EXPORT_PAGE_SIZE, page_token=token
            )
            try:
                answer = await self._admin.ExportJournal(request, timeout=self._deadline)
            except grpc.aio.AioRpcError as exc:
                raise SideUnavailable("card journal", f"{exc.code().name}: {exc.details()}") from exc
            for item in answer.entries:
                entry = item.entry
                kind = RECHARGE_KINDS.get(entry.kind)
                if kind is not None:
                    at = entry.created_at.ToDatetime(tzinfo=UTC)
                    credits.append(CardCredit(entry.business_key, kind, entry.amount_fen, at))
            token = answer.next_page_token
            if not token:
                return credits

    async def recharge_status(self, order_no: str, merchant_id: str) -> str:
        request = card_pb2.GetRechargeRequest(order_no=order_no, merchant_id=merchant_id)
        try:
            answer = await self._card.GetRecharge(request, timeout=self._deadline)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return ""
            raise SideUnavailable("card pre-recharge", f"{exc.code().name}: {exc.details()}") from exc
        return _RECHARGE_STATUS.get(answer.status, "")
