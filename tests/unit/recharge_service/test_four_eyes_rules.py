"""Issue 17 without I/O: the approval's state machine, the operators' action rules that resolve and
InspectOrder share, four eyes' threshold, who may decide (the policy table and the command), the
ops CLI's approval commands and the setting."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from protos.recharge.v1 import recharge_pb2
from rc_common.auth import APPROVER, OPERATOR, VIEWER, Principal
from rc_common.errors import InvalidArgument, PermissionDenied, Refused
from rc_common.grpc_status import to_status
from rc_common.policy import decide
from rc_common.settings import parse_settings
from rc_common.transitions import IllegalTransition
from recharge_service.domain.approval import Approval, ApprovalStatus
from recharge_service.domain.numbers import new_approval_id
from recharge_service.domain.order import Channel, OrderStatus, RechargeOrder
from recharge_service.entrypoints.ops_approvals import approval_line, show_approvals
from recharge_service.entrypoints.ops_cli import parser
from recharge_service.entrypoints.ops_messages import health_to_proto
from recharge_service.service_layer import resolve_rules as rules
from recharge_service.service_layer.commands import DecideApproval, ResolveAction
from recharge_service.service_layer.four_eyes import FourEyes, statuses_of
from recharge_service.service_layer.inspection import NOT_ASKED, RemoteView, previews
from recharge_service.service_layer.ops_health import OpsHealth, SystemHealth
from recharge_service.settings import RechargeSettings

S = OrderStatus
A = ResolveAction
NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


def an_order(status: OrderStatus, *, paid: bool = True, pay_fen: int = 100_000) -> RechargeOrder:
    return RechargeOrder(
        order_no="R202611301200000000000001", idempotency_key="k", card_no="8800000000000001",
        channel=Channel.POS, pay_amount_fen=pay_fen, payer_openid="o-1", created_at=NOW, updated_at=NOW,
        expires_at=NOW + timedelta(minutes=30), merchant_id="teahouse", merchant_version=1, status=status,
        transaction_id="4200000001" if paid else "",
    )  # fmt: skip


def an_approval(**changes: Any) -> Approval:
    values: dict[str, Any] = {
        "approval_id": "A1", "order_no": "R1", "merchant_id": "teahouse", "action": "REFUND",
        "amount_fen": 100_000, "requested_by": "alice", "request_reason": "customer", "requested_at": NOW,
    }  # fmt: skip
    values.update(changes)
    return Approval(**values)


# -- the approval ---------------------------------------------------------------------------------


def test_an_approval_is_decided_once_and_never_by_the_one_who_asked() -> None:
    approval = an_approval()
    with pytest.raises(IllegalTransition):
        approval.decide(True, "alice", "mine", NOW)
    assert approval.pending
    approval.decide(True, "carol", "ok", NOW, "voided; refund R1-R1: REFUNDING")
    assert (approval.status, approval.decided_by, approval.outcome) == (
        ApprovalStatus.APPROVED, "carol", "voided; refund R1-R1: REFUNDING",
    )  # fmt: skip
    assert approval.settled_as(True, "carol")
    assert not approval.settled_as(False, "carol") and not approval.settled_as(True, "dave")
    for approve in (True, False):
        with pytest.raises(IllegalTransition):
            approval.decide(approve, "dave", "late", NOW)


def test_approval_ids_sort_by_when_they_were_asked() -> None:
    first, later = new_approval_id(NOW, "0" * 10), new_approval_id(NOW + timedelta(seconds=1), "0" * 10)
    assert first == "A202611301200000000000000" and len(first) == 25 and first < later


# -- the rules resolve.py acts by and InspectOrder previews with ----------------------------------


@pytest.mark.parametrize(
    ("status", "paid", "kind", "reason"),
    [
        (S.CREDITED, True, rules.Kind.REFUSED, "CARD_CREDITED"),
        (S.REFUNDED, True, rules.Kind.NOOP, rules.NOT_AN_ANOMALY),
        (S.MANUAL_REVIEW, False, rules.Kind.REFUSED, "ORDER_NOT_PAID"),
        (S.MANUAL_REVIEW, True, rules.Kind.RUN, ""),
        (S.CREDIT_UNKNOWN, True, rules.Kind.RUN, ""),
        (S.REFUNDING, True, rules.Kind.RUN, ""),
    ],
)
def test_what_a_refund_allows(status: OrderStatus, paid: bool, kind: rules.Kind, reason: str) -> None:
    check = rules.refund(an_order(status, paid=paid))
    assert (check.kind, check.reason) == (kind, reason)
    if kind is rules.Kind.REFUSED:
        with pytest.raises(Refused) as refused:
            check.enforce()
        assert refused.value.reason == reason
    else:
        check.enforce()  # nothing raised


def test_the_card_systems_word_decides_refund_and_confirm() -> None:
    assert rules.refund_given_card("SUCCEEDED").reason == "CARD_CREDITED"
    assert all(rules.refund_given_card(s).runs for s in ("RECHARGING", "VOIDED", "NOT_FOUND"))
    assert rules.confirm_given_card("RECHARGING").runs and rules.confirm_given_card("SUCCEEDED").runs
    assert rules.card_credited("SUCCEEDED").runs and not rules.card_credited("RECHARGING").runs
    for state in ("VOIDED", "NOT_FOUND"):
        assert rules.confirm_given_card(state).reason == "CARD_NOT_CREDITED"
    review = an_order(S.MANUAL_REVIEW)
    assert rules.asked_refund(review, "NOT_FOUND") is None
    assert rules.asked_refund(review, "ABNORMAL").reason == "REFUND_ABNORMAL"  # type: ignore[union-attr]
    assert rules.asked_refund(review, "SUCCESS").runs  # type: ignore[union-attr]
    assert rules.asked_refund(review, "PROCESSING").kind is rules.Kind.NOOP  # type: ignore[union-attr]


def test_retry_now_and_confirm_on_final_orders_change_nothing() -> None:
    for status in (S.CREDITED, S.REFUNDED, S.CLOSED, S.REJECTED):
        assert rules.retry_now(an_order(status)).kind is rules.Kind.NOOP
    assert rules.retry_now(an_order(S.MANUAL_REVIEW)).runs
    assert rules.confirm_credit(an_order(S.CREDITED)).kind is rules.Kind.NOOP
    assert rules.confirm_credit(an_order(S.REFUNDED)).reason == "CARD_NOT_CREDITED"
    assert rules.confirm_credit(an_order(S.PAID, paid=False)).reason == "ORDER_NOT_PAID"


def test_four_eyes_guards_refunds_above_the_threshold_that_would_run() -> None:
    four_eyes = FourEyes(50_000)
    review = an_order(S.MANUAL_REVIEW)
    assert four_eyes.needs_approval(A.REFUND, review)
    assert not four_eyes.needs_approval(A.REFUND, an_order(S.MANUAL_REVIEW, pay_fen=50_000))  # not above
    assert not four_eyes.needs_approval(A.CONFIRM_CREDIT, review)
    assert not four_eyes.needs_approval(A.REFUND, an_order(S.CREDITED))  # refused at once instead
    refunding = an_order(S.REFUNDING)
    refunding.out_refund_no = f"{refunding.order_no}-R1"  # decided already: the same number again
    assert not four_eyes.needs_approval(A.REFUND, refunding)
    assert FourEyes(0).needs_approval(A.REFUND, an_order(S.CREDIT_UNKNOWN, pay_fen=1))  # 0: every refund
    assert "¥500.00" in four_eyes.describe()


def test_previews_follow_the_views() -> None:
    def shown(order: RechargeOrder, card: RemoteView) -> dict[ResolveAction, tuple[bool, str, bool]]:
        found = previews(order, card, RemoteView("done", "SUCCESS"), NOT_ASKED, FourEyes(50_000))
        return {p.action: (p.allowed, p.refused_reason, p.needs_approval) for p in found}

    review = an_order(S.MANUAL_REVIEW)
    assert shown(review, RemoteView("done", "RECHARGING")) == {
        A.RETRY_NOW: (True, "", False),
        A.REFUND: (True, "", True),
        A.CONFIRM_CREDIT: (True, "", False),
    }
    landed = shown(review, RemoteView("done", "SUCCEEDED"))
    assert landed[A.REFUND] == (False, "CARD_CREDITED", False)
    assert landed[A.CONFIRM_CREDIT] == (True, "", False)
    assert shown(review, RemoteView("refused", "NOT_FOUND"))[A.CONFIRM_CREDIT] == (
        False,
        "CARD_NOT_CREDITED",
        False,
    )
    silent = shown(review, RemoteView("unknown"))
    assert silent[A.REFUND] == (True, "", True) and silent[A.CONFIRM_CREDIT] == (True, "", False)
    small = previews(an_order(S.MANUAL_REVIEW, pay_fen=100), RemoteView("done", "RECHARGING"),
                     RemoteView("done", "SUCCESS"), NOT_ASKED, FourEyes(50_000))  # fmt: skip
    assert [p.needs_approval for p in small] == [False, False, False]


# -- who decides ----------------------------------------------------------------------------------


def person(*roles: str) -> Principal:
    return Principal(subject="carol", roles=frozenset(roles), loopback_plaintext=True)


def test_only_approvers_decide_and_every_reader_inspects_finds_lists_and_checks_health() -> None:
    method = "/recharge.v1.RechargeOps/DecideApproval"
    assert decide(person(APPROVER), method).allowed
    for role in (VIEWER, OPERATOR):
        refused = decide(person(role), method)
        assert (refused.allowed, refused.reason) == (False, "ROLE_REQUIRED")
    for read in ("InspectOrder", "FindOrders", "ListApprovals", "GetOpsHealth"):
        for role in (VIEWER, OPERATOR, APPROVER):
            assert decide(person(role), f"/recharge.v1.RechargeOps/{read}").allowed
        assert decide(Principal(loopback_plaintext=True), f"/recharge.v1.RechargeOps/{read}").unauthenticated


def test_a_decision_needs_a_person_an_approval_and_a_reason() -> None:
    with pytest.raises(PermissionDenied) as nobody:
        DecideApproval("A1", True, "", "ok").validated()
    assert nobody.value.reason == "OPERATOR_REQUIRED"
    for approval_id, reason, field in (
        ("", "ok", "approval_id"),
        ("A1", " ", "reason"),
        ("A1", "x" * 501, "reason"),
    ):
        with pytest.raises(InvalidArgument) as bad:
            DecideApproval(approval_id, True, "carol", reason).validated()
        assert bad.value.field == field
    assert DecideApproval(" A1 ", False, " carol ", " why ").validated() == ("A1", False, "carol", "why")


def test_same_operator_is_permission_denied_with_its_reason() -> None:
    status = to_status(PermissionDenied("SAME_OPERATOR", "another operator must decide it"))
    assert status.code.name == "PERMISSION_DENIED"


def test_approval_statuses_default_to_pending_and_unknown_ones_are_refused() -> None:
    assert statuses_of([]) == [ApprovalStatus.PENDING]
    assert statuses_of(["approved", " REJECTED "]) == [ApprovalStatus.APPROVED, ApprovalStatus.REJECTED]
    with pytest.raises(InvalidArgument) as bad:
        statuses_of(["LATER"])
    assert bad.value.field == "statuses"


# -- the setting, the CLI, the health message -----------------------------------------------------


def test_the_four_eyes_threshold_defaults_to_500_yuan_and_refuses_negative_values() -> None:
    def parsed(*argv: str) -> RechargeSettings:
        return parse_settings(RechargeSettings, list(argv), prog="recharge", description="")

    assert parsed().ops.four_eyes_refund_above == 50_000
    assert parsed("--four-eyes-refund-above", "0").ops.four_eyes_refund_above == 0
    assert parsed("--ops-health-deadline", "0.5").ops.health_deadline == 0.5
    with pytest.raises(SystemExit):
        parsed("--four-eyes-refund-above", "-1")


class Approvals:
    """A ``RechargeOpsStub`` stand-in answering ListApprovals with two pages."""

    def __init__(self) -> None:
        self.requests: list[recharge_pb2.ListApprovalsRequest] = []

    def ListApprovals(self, request: recharge_pb2.ListApprovalsRequest, timeout: float) -> Any:
        self.requests.append(request)
        approval = recharge_pb2.Approval(
            approval_id=f"A{len(self.requests)}", order_no="R1", action=recharge_pb2.RESOLVE_ACTION_REFUND,
            amount_fen=123_456, status="PENDING", requested_by="alice", request_reason="customer",
        )  # fmt: skip
        token = "next" if len(self.requests) == 1 else ""
        return recharge_pb2.ListApprovalsResponse(approvals=[approval], next_page_token=token)


def test_the_cli_lists_approvals_across_pages_and_decides_by_id() -> None:
    cli = parser()
    args = cli.parse_args(["approvals", "--status", "pending", "--status", "approved"])
    stub = Approvals()
    text = show_approvals(cast(Any, stub), args)
    assert [r.statuses for r in stub.requests] == [["PENDING", "APPROVED"]] * 2
    assert stub.requests[1].page.page_token == "next"
    assert "A1" in text and "A2" in text and "¥1,234.56" in text and text.endswith("2 approvals")
    assert cli.parse_args(["approve", "A1", "--reason", "ok"]).command == "approve"
    for bad in (["approve", "A1"], ["reject", "--reason", "no"], ["approvals", "--status", "LATER"]):
        with pytest.raises(SystemExit):
            cli.parse_args(bad)
    line = approval_line(
        recharge_pb2.Approval(approval_id="A9", action=2, amount_fen=60_000, requested_by="bob")
    )
    assert "A9" in line and "REFUND ¥600.00" in line and "bob" in line
    assert isinstance(args, argparse.Namespace)


def test_health_without_the_databases_figures_still_answers() -> None:
    health = OpsHealth("r1", [SystemHealth("card", "UNKNOWN", 1000, "x: DEADLINE_EXCEEDED")], [], None,
                       timedelta(hours=1), 0)  # fmt: skip
    answer = health_to_proto(health)
    assert (answer.node_id, answer.hold_seconds, dict(answer.orders_by_status)) == ("r1", 3600, {})
    assert [(s.name, s.status) for s in answer.systems] == [("card", "UNKNOWN")]
