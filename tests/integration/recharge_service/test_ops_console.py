"""The operators' console's RechargeOps calls (issue 17) on a real stack: the three services as
processes on SQLite, the real card system and WeChat Pay simulators, operator tokens with chosen
subjects and roles. Four eyes is checked at the simulators (nothing voided, nothing refunded until
a second operator approves); InspectOrder survives a card system that does not answer in time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
import pytest

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.auth import APPROVER, OPERATOR, VIEWER
from rc_common.channels import ClientAuth, aio_channel
from rc_common.grpc_status import error_reason
from scripts.merchants import direct_merchants_flag
from scripts.stack import Stack, build_stack, start_stack
from tests.e2e.merchants import PARTNER, configured, open_all
from tests.e2e.recharge_flow.conftest import Clients, connected

NODE = "console-node"
THRESHOLD_FEN = 30_000
HOLD_S = 3600  # the sentinel leaves these tests' orders alone
REMOTE_DEADLINE_S = 1.0
CARD = "/card.v1.CardSystem/"
K = faults_pb2
R = recharge_pb2
REFUND = R.RESOLVE_ACTION_REFUND

OpsAs = Callable[..., recharge_pb2_grpc.RechargeOpsStub]


@pytest.fixture(scope="module")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("ops-console")
    merchants = configured()
    stack = build_stack(
        workdir,
        recharge_args=[
            *("--four-eyes-refund-above", str(THRESHOLD_FEN), "--hold", str(HOLD_S), "--node-id", NODE),
            *("--confirm-attempts", "1", "--confirm-deadline", "0.5"),
            *("--remote-backoff", "0.05", "--remote-deadline", str(REMOTE_DEADLINE_S)),
            *("--outbox-interval", "0.2", "--outbox-backoff", "0.1", "--outbox-backoff-max", "0.5"),
        ],
        wechat_args=[
            *("--notify-schedule", "0.2,0.3,0.5,1", "--refund-delay", "0.3", "--idle-poll", "0.2"),
            *direct_merchants_flag(merchants),
        ],
    )
    running = start_stack(stack)
    try:
        open_all(running, merchants)
        yield running
    finally:
        running.stop()


@pytest.fixture
async def clients(console_stack: Stack) -> AsyncIterator[Clients]:
    async with connected(Clients, console_stack, PARTNER, {}) as built:
        yield built


@pytest.fixture
async def ops_as(console_stack: Stack) -> AsyncIterator[OpsAs]:
    """``ops_as(subject, *roles)``: RechargeOps as that operator (a token of the stack's key)."""
    async with AsyncExitStack() as channels:

        def stub(subject: str, *roles: str) -> recharge_pb2_grpc.RechargeOpsStub:
            auth = ClientAuth(token=console_stack.token_for(subject, roles))
            channel = aio_channel(console_stack.recharge.address, auth)
            channels.push_async_callback(channel.close)
            return recharge_pb2_grpc.RechargeOpsStub(channel)

        yield stub


async def credit_unknown(clients: Clients, pay_fen: int) -> R.RechargeOrder:
    """A paid order whose credit went unanswered (CREDIT_UNKNOWN; the card still says RECHARGING)."""
    card_no = await clients.new_card()
    order = await clients.create(card_no, pay_fen)
    await clients.card_fault(CARD + "ConfirmRecharge", K.FAULT_KIND_UNAVAILABLE, times=1)
    await clients.pay(order.order_no)
    stuck = await clients.wait_for(order.order_no, lambda o: o.status == R.ORDER_STATUS_CREDIT_UNKNOWN)
    await clients.clear_faults()
    return stuck


async def refund_at_wechat(clients: Clients, order_no: str) -> int | None:
    """The refund's status at the WeChat simulator, None when it never got one."""
    try:
        return (await clients.refund(f"{order_no}-R1")).status
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND
        return None


async def story(clients: Clients, order_no: str) -> list[R.TimelineEvent]:
    """The order's timeline but the outbox's deliveries (its follow-ups go on in the background)."""
    return [e for e in await clients.timeline(order_no) if e.kind != "outbox_delivery"]


def decide_request(approval_id: str, approve: bool, reason: str = "checked") -> R.DecideApprovalRequest:
    return R.DecideApprovalRequest(approval_id=approval_id, approve=approve, reason=reason)


async def test_a_refund_above_the_threshold_runs_only_when_a_second_operator_approves(
    clients: Clients, ops_as: OpsAs
) -> None:
    order = await credit_unknown(clients, 50_000)
    alice = ops_as("alice", OPERATOR, APPROVER)  # may approve others' requests, never her own
    ask = R.ResolveAnomalyRequest(order_no=order.order_no, action=REFUND, reason="customer asked")

    asked = await alice.ResolveAnomaly(ask, timeout=15)

    assert asked.outcome == "APPROVAL_REQUIRED"
    approval = asked.approval
    assert (approval.status, approval.requested_by, approval.amount_fen) == ("PENDING", "alice", 50_000)
    assert (await clients.recharge(order.order_no)).status == card_pb2.PRE_RECHARGE_STATUS_RECHARGING
    assert await refund_at_wechat(clients, order.order_no) is None
    for subject, roles in (("victor", (VIEWER,)), ("oscar", (OPERATOR,))):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await ops_as(subject, *roles).DecideApproval(
                decide_request(approval.approval_id, True), timeout=10
            )
        assert (denied.value.code(), error_reason(denied.value)) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_REQUIRED",
        )
    with pytest.raises(grpc.aio.AioRpcError) as same:
        await alice.DecideApproval(decide_request(approval.approval_id, True), timeout=10)
    assert (same.value.code(), error_reason(same.value)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "SAME_OPERATOR",
    )
    assert (await clients.recharge(order.order_no)).status == card_pb2.PRE_RECHARGE_STATUS_RECHARGING
    assert await refund_at_wechat(clients, order.order_no) is None

    decided = await ops_as("carol", APPROVER).DecideApproval(
        decide_request(approval.approval_id, True, "ticket 7"), timeout=20
    )

    assert (decided.approval.status, decided.approval.decided_by) == ("APPROVED", "carol")
    assert decided.approval.outcome.startswith("voided; refund")
    assert (await clients.recharge(order.order_no)).status == card_pb2.PRE_RECHARGE_STATUS_VOIDED
    ended = await clients.wait_for(order.order_no, lambda o: o.status == R.ORDER_STATUS_REFUNDED)
    assert ended.out_refund_no == f"{order.order_no}-R1"
    events = await clients.timeline(order.order_no)
    voided = [i for i, e in enumerate(events) if e.method.endswith("VoidRecharge") and e.outcome == "done"]
    refunds = [i for i, e in enumerate(events) if e.method.endswith("CreateRefund")]
    assert voided and refunds and voided[0] < refunds[0]  # void first
    actions = [(e.actor, e.outcome) for e in events if e.kind == "operator_action"]
    assert actions == [
        ("alice", "approval_requested"),
        ("carol", "requested"),
        ("carol", "done"),
        ("carol", "approval_approved"),
    ]
    listed = await alice.ListApprovals(R.ListApprovalsRequest(statuses=["APPROVED"]), timeout=10)
    assert approval.approval_id in [a.approval_id for a in listed.approvals]


async def test_a_rejected_refund_runs_nothing_and_a_small_one_runs_at_once(
    clients: Clients, ops_as: OpsAs
) -> None:
    large = await credit_unknown(clients, 40_000)  # one after the other: a fault plan is the stack's
    small = await credit_unknown(clients, 20_000)
    bob = ops_as("bob", OPERATOR)
    asked = await bob.ResolveAnomaly(
        R.ResolveAnomalyRequest(order_no=large.order_no, action=REFUND, reason="duplicate top-up"), timeout=15
    )
    rejected = await ops_as("carol", APPROVER).DecideApproval(
        decide_request(asked.approval.approval_id, False, "the customer keeps it"), timeout=15
    )
    assert rejected.approval.status == "REJECTED"
    assert rejected.order.status == R.ORDER_STATUS_CREDIT_UNKNOWN
    assert (await clients.recharge(large.order_no)).status == card_pb2.PRE_RECHARGE_STATUS_RECHARGING
    assert await refund_at_wechat(clients, large.order_no) is None

    at_once = await bob.ResolveAnomaly(
        R.ResolveAnomalyRequest(order_no=small.order_no, action=REFUND, reason="small"), timeout=15
    )
    assert at_once.outcome.startswith("voided; refund") and not at_once.approval.approval_id
    assert (await clients.recharge(small.order_no)).status == card_pb2.PRE_RECHARGE_STATUS_VOIDED
    await clients.wait_for(small.order_no, lambda o: o.status == R.ORDER_STATUS_REFUNDED)


async def test_inspect_order_answers_with_the_card_unknown_when_the_card_system_times_out(
    clients: Clients, ops_as: OpsAs
) -> None:
    card_no = await clients.new_card()
    order = await clients.create(card_no, 20_000)
    await clients.pay(order.order_no)
    credited = await clients.wait_for(order.order_no, lambda o: o.status == R.ORDER_STATUS_CREDITED)
    viewer = ops_as("victor", VIEWER)
    request = R.InspectOrderRequest(order_no=order.order_no, merchant_id=clients.merchant_id)
    rows_before = await story(clients, order.order_no)
    delay_ms = int(REMOTE_DEADLINE_S * 3000)
    await clients.card_fault(CARD + "GetRecharge", K.FAULT_KIND_DELAY, times=1, delay_ms=delay_ms)

    found = await viewer.InspectOrder(request, timeout=15)

    assert found.card.outcome == "unknown" and "DEADLINE_EXCEEDED" in found.card.detail
    assert (found.wechat_trade.outcome, found.wechat_trade.state) == ("done", "SUCCESS")
    assert found.wechat_trade.amount_fen == 20_000 and credited.transaction_id in found.wechat_trade.detail
    assert found.wechat_refund.outcome == ""
    assert found.order.status == R.ORDER_STATUS_CREDITED and found.hold_seconds == HOLD_S
    shown = {p.action: (p.allowed, p.refused_reason) for p in found.actions}
    assert shown == {
        R.RESOLVE_ACTION_RETRY_NOW: (False, "NOT_AN_ANOMALY"),
        R.RESOLVE_ACTION_REFUND: (False, "CARD_CREDITED"),
        R.RESOLVE_ACTION_CONFIRM_CREDIT: (False, "NOT_AN_ANOMALY"),
    }
    assert await story(clients, order.order_no) == rows_before  # read-only: nothing written

    again = await viewer.InspectOrder(request, timeout=15)  # the fault was used up
    assert (again.card.outcome, again.card.state) == ("done", "SUCCEEDED")
    assert again.card.amount_fen == credited.credit_amount_fen

    paid_by = credited.transaction_id
    for query in (order.order_no, card_no, paid_by):
        hits = await viewer.FindOrders(R.FindOrdersRequest(query=query), timeout=10)
        assert [o.order_no for o in hits.orders] == [order.order_no], query
    other = "teahouse" if clients.merchant_id != "teahouse" else "bakery"
    assert not (
        await viewer.FindOrders(R.FindOrdersRequest(query=paid_by, merchant_id=other), timeout=10)
    ).orders
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await viewer.FindOrders(R.FindOrdersRequest(query=" "), timeout=10)
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "query" in (empty.value.details() or "")


async def test_ops_health_names_the_replica_its_systems_and_its_last_sentinel_run(
    clients: Clients, ops_as: OpsAs
) -> None:
    await ops_as("oscar", OPERATOR).RunSentinel(R.RunSentinelRequest(), timeout=30)
    viewer = ops_as("victor", VIEWER)

    health = await viewer.GetOpsHealth(R.GetOpsHealthRequest(), timeout=15)

    assert health.node_id == NODE and health.hold_seconds == HOLD_S
    systems = {s.name: s for s in health.systems}
    assert set(systems) == {"card", "wechat", "database"}
    assert all(s.status == "SERVING" and s.latency_ms >= 0 for s in systems.values()), systems
    assert health.sentinel_runs and health.sentinel_runs[0].node_id == NODE
    assert health.sentinel_runs[0].finished_at.seconds > 0
    assert set(dict(health.orders_by_status)) >= {"CREDITED", "MANUAL_REVIEW", "CREDIT_UNKNOWN"}
    assert all(n >= 0 for n in health.orders_by_status.values())
    pending = await viewer.ListApprovals(R.ListApprovalsRequest(), timeout=10)
    assert health.pending_approvals == len(pending.approvals)
    assert health.outbox_backlog >= 0 and health.oldest_unfinished_order_age_seconds >= 0


async def test_the_new_calls_answer_their_empty_requests_without_internal_errors(ops_as: OpsAs) -> None:
    approver = ops_as("carol", APPROVER)
    answers = {}
    for name, request in (
        ("InspectOrder", R.InspectOrderRequest()),
        ("FindOrders", R.FindOrdersRequest()),
        ("ListApprovals", R.ListApprovalsRequest()),
        ("DecideApproval", R.DecideApprovalRequest()),
        ("GetOpsHealth", R.GetOpsHealthRequest()),
    ):
        try:
            await getattr(approver, name)(request, timeout=15)
            answers[name] = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            answers[name] = error.code()
    assert answers == {
        "InspectOrder": grpc.StatusCode.INVALID_ARGUMENT,
        "FindOrders": grpc.StatusCode.INVALID_ARGUMENT,
        "ListApprovals": grpc.StatusCode.OK,
        "DecideApproval": grpc.StatusCode.INVALID_ARGUMENT,
        "GetOpsHealth": grpc.StatusCode.OK,
    }
