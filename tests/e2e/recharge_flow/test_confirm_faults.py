"""With the card system's ConfirmRecharge faulted, an order ends CREDITED or CREDIT_UNKNOWN: never
refunded, never credited twice (the faults are the card system's real fault injection). Orders of
the direct-mode merchant (pay ¥500 get ¥80)."""

from __future__ import annotations

import grpc
import pytest

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from tests.e2e.recharge_flow.conftest import CONFIRM_DEADLINE_S, POLL, Clients
from tests.integration.card_service.conftest import log_events
from tests.waiting import eventually

CONFIRM = "/card.v1.CardSystem/ConfirmRecharge"
LATE_MS = int(CONFIRM_DEADLINE_S * 1000) + 300
CREDITED = recharge_pb2.ORDER_STATUS_CREDITED
CREDIT_UNKNOWN = recharge_pb2.ORDER_STATUS_CREDIT_UNKNOWN
K_LATE_SUCCESS = faults_pb2.FAULT_KIND_LATE_SUCCESS
#: What the card system's fault interceptor logs when a LATE_SUCCESS call has been processed.
LATE_ENDED = ("fault_late_success_processed", "fault_late_success_failed")

CASES = [
    # kind, how many confirm attempts are hit, the order's end, does the credit land
    (faults_pb2.FAULT_KIND_UNAVAILABLE, 1, CREDITED, True),
    (faults_pb2.FAULT_KIND_UNAVAILABLE, 3, CREDIT_UNKNOWN, False),
    (faults_pb2.FAULT_KIND_LOST_RESPONSE, 1, CREDITED, True),
    (faults_pb2.FAULT_KIND_LOST_RESPONSE, 3, CREDIT_UNKNOWN, True),
    (faults_pb2.FAULT_KIND_LATE_SUCCESS, 1, CREDITED, True),
    (faults_pb2.FAULT_KIND_LATE_SUCCESS, 3, CREDIT_UNKNOWN, True),
]


def late_runs_ended(clients: Clients) -> int:
    """LATE_SUCCESS calls the card system has finished processing (its log says so)."""
    return sum(len(log_events(clients.stack.card, event)) for event in LATE_ENDED)


@pytest.mark.parametrize(
    ("kind", "times", "end", "lands"),
    CASES,
    ids=[f"{faults_pb2.FaultKind.Name(k).removeprefix('FAULT_KIND_')}x{t}" for k, t, _e, _l in CASES],
)
async def test_a_faulted_confirm_ends_credited_or_credit_unknown_and_never_refunds(
    clients: Clients, kind: int, times: int, end: int, lands: bool
) -> None:
    card_no = await clients.new_card()
    order = await clients.create(card_no, 50_000)
    late_before = late_runs_ended(clients)
    await clients.card_fault(CONFIRM, kind, times, delay_ms=LATE_MS)
    await clients.pay(order.order_no)
    settled = await clients.wait_for(
        order.order_no,
        lambda o: (
            o.status not in (recharge_pb2.ORDER_STATUS_AWAITING_PAYMENT, recharge_pb2.ORDER_STATUS_PAID)
        ),
    )
    assert settled.status == end
    if end == CREDIT_UNKNOWN:
        assert settled.failure_reason == ""
        confirms = [e for e in await clients.timeline(order.order_no) if e.method == CONFIRM]
        assert [e.outcome for e in confirms] == ["sent", "unknown"] * 3

    if lands:  # late work may still be in flight: wait for the card system's own record

        async def succeeded() -> bool:
            record = await clients.recharge(order.order_no)
            return record.status == card_pb2.PRE_RECHARGE_STATUS_SUCCEEDED

        await eventually(succeeded, within=30, interval=POLL, what="the card system's record SUCCEEDED")
        # … and for every late duplicate to run its course
        stats = await clients.card_faults.GetFaultStats(faults_pb2.GetFaultStatsRequest(), timeout=5)
        late = sum(c.count for c in stats.counts if (c.method, c.kind) == (CONFIRM, K_LATE_SUCCESS))
        await eventually(
            lambda: late_runs_ended(clients) - late_before >= late,
            within=30,
            interval=POLL,
            what=f"the card system ending {late} late ConfirmRecharge run(s)",
        )
    record = await clients.recharge(order.order_no)
    expected_record = (
        card_pb2.PRE_RECHARGE_STATUS_SUCCEEDED if lands else card_pb2.PRE_RECHARGE_STATUS_RECHARGING
    )
    assert record.status == expected_record
    assert await clients.principal_credits(card_no, order.order_no) == (1 if lands else 0)
    assert await clients.balance(card_no) == (58_000 if lands else 0)

    final = await clients.order(order.order_no)
    assert final.status == end
    visited = await clients.statuses_visited(order.order_no)
    assert not visited & {recharge_pb2.ORDER_STATUS_REFUNDING, recharge_pb2.ORDER_STATUS_REFUNDED}
    with pytest.raises(grpc.aio.AioRpcError) as no_refund:
        await clients.refund(f"{order.order_no}-R1")
    assert no_refund.value.code() == grpc.StatusCode.NOT_FOUND
