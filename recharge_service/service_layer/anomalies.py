"""ListAnomalies: the orders an operator should look at, oldest change first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from rc_common import validation
from rc_common.errors import InvalidArgument
from recharge_service.domain.merchant import check_merchant_id
from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.queries import page_size_of
from recharge_service.service_layer.storage import read_anomaly_page_token

S = OrderStatus
#: Listed when no status is asked for; PAID too once it has sat longer than the hold (a crash
#: between the payment and the credit step).
DEFAULT_STATUSES = (S.CREDIT_UNKNOWN, S.REFUNDING, S.MANUAL_REVIEW)

#: What an anomaly without a recorded reason is waiting for.
WAITING_FOR = {
    S.CREATED: "waiting for the pre-recharge or the prepay order",
    S.AWAITING_PAYMENT: "waiting for the payment",
    S.PAID: "paid; the credit step has not finished",
    S.CREDIT_UNKNOWN: "credit outcome unknown; the sentinel asks the card system",
    S.REFUNDING: "refund requested; waiting for WeChat",
}


@dataclass(frozen=True)
class Anomaly:
    order: RechargeOrder
    age: timedelta
    reason: str


@dataclass(frozen=True)
class AnomalyList:
    anomalies: list[Anomaly]
    next_page_token: str


async def list_anomalies(
    deps: Deps,
    *,
    hold: timedelta,
    statuses: Sequence[int] = (),
    min_age_seconds: int = 0,
    page_size: int = 0,
    page_token: str = "",
    merchant_id: str = "",
) -> AnomalyList:
    """With ``merchant_id``, that merchant's anomalies only ("" = every merchant's)."""
    if merchant_id:
        check_merchant_id(merchant_id)
    try:
        wanted = [OrderStatus(s) for s in statuses]
    except ValueError:
        raise InvalidArgument("statuses", "unknown or unspecified status") from None
    min_age = validation.seconds("min_age_seconds", min_age_seconds)
    if page_token:
        try:
            read_anomaly_page_token(page_token)
        except ValueError:
            raise InvalidArgument("page.page_token", "not a token from a previous page") from None
    now = deps.clock()
    async with deps.uow(readonly=True) as uow:
        page = await uow.anomalies.page(
            statuses=wanted or DEFAULT_STATUSES,
            old_statuses=() if wanted else (S.PAID,),
            old_before=now - hold,
            changed_before=now - min_age if min_age_seconds else None,
            merchant_id=merchant_id,
            page_size=page_size_of(page_size),
            page_token=page_token,
        )
    return AnomalyList(
        [
            Anomaly(order, now - order.updated_at, order.failure_reason or WAITING_FOR.get(order.status, ""))
            for order in page.orders
        ],
        page.next_page_token,
    )
