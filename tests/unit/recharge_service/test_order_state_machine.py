"""The order state machine: one table, forward only, each change recorded with its event."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from protos.recharge.v1 import recharge_pb2
from recharge_service.domain import events
from recharge_service.domain.answers import NotVoided, VoidProof
from recharge_service.domain.order import (
    FINAL,
    TRANSITIONS,
    Channel,
    IllegalTransition,
    OrderStatus,
    RechargeOrder,
)

S = OrderStatus
NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)

EXPECTED = {
    S.CREATED: {S.AWAITING_PAYMENT, S.REJECTED, S.CLOSED, S.MANUAL_REVIEW},
    S.AWAITING_PAYMENT: {S.PAID, S.CLOSED, S.MANUAL_REVIEW},
    S.PAID: {S.CREDITED, S.CREDIT_UNKNOWN, S.REFUNDING, S.MANUAL_REVIEW},
    S.CREDIT_UNKNOWN: {S.CREDITED, S.REFUNDING, S.MANUAL_REVIEW},
    S.REFUNDING: {S.REFUNDED, S.CREDITED, S.MANUAL_REVIEW},
    S.MANUAL_REVIEW: {S.CREDITED, S.REFUNDING, S.REFUNDED, S.CLOSED},
    S.CREDITED: set(),
    S.REFUNDED: set(),
    S.CLOSED: set(),
    S.REJECTED: set(),
}


def order(status: OrderStatus) -> RechargeOrder:
    return RechargeOrder(
        order_no="R20261126120000" + "0" * 10,
        idempotency_key="k",
        card_no="8800000000000001",
        channel=Channel.POS,
        pay_amount_fen=100,
        payer_openid="o",
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW,
        merchant_id="shop-a",
        merchant_version=1,
        status=status,
    )


def test_the_table_is_exactly_the_designed_one() -> None:
    assert {state: set(targets) for state, targets in TRANSITIONS.items()} == EXPECTED


def test_states_mirror_the_proto_enum() -> None:
    for state in S:
        assert recharge_pb2.OrderStatus.Value(f"ORDER_STATUS_{state.name}") == state.value
    for channel in Channel:
        assert recharge_pb2.Channel.Value(f"CHANNEL_{channel.name}") == channel.value


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_every_move_is_allowed_only_if_the_table_says_so(current: OrderStatus, target: OrderStatus) -> None:
    subject = order(current)
    subject.transaction_id = "4200000001"
    if target in EXPECTED[current]:
        if target is S.REFUNDING:  # only with the void's proof
            proof = VoidProof.from_answer(subject.order_no, "VOIDED")
            assert subject.start_refund(proof, f"{subject.order_no}-R1", "why", NOW, "tester")
        else:
            subject.transition(target, NOW, actor="tester", detail="why")
        assert subject.status is target
    else:
        with pytest.raises(IllegalTransition):
            subject.transition(target, NOW)
        assert subject.status is current
        assert subject.changes == [] and subject.events == []


@pytest.mark.parametrize("current", [S.PAID, S.CREDIT_UNKNOWN, S.MANUAL_REVIEW])
def test_refunding_needs_the_voids_own_proof_for_this_very_order(current: OrderStatus) -> None:
    subject = order(current)
    with pytest.raises(IllegalTransition):
        subject.transition(S.REFUNDING, NOW)  # no proof, no way in
    with pytest.raises(NotVoided):
        VoidProof.from_answer(subject.order_no, "SUCCEEDED")
    with pytest.raises(NotVoided):
        VoidProof.from_answer(subject.order_no, "RECHARGING")
    other = VoidProof.from_answer("R-another-order", "VOIDED")
    forged = VoidProof(subject.order_no, object())
    for bad in (other, forged):
        with pytest.raises(IllegalTransition):
            subject.start_refund(bad, f"{subject.order_no}-R1", "why", NOW, "tester")
    assert subject.status is current and subject.changes == []
    proof = VoidProof.from_answer(subject.order_no, "VOIDED")
    assert subject.start_refund(proof, f"{subject.order_no}-R1", "voided", NOW, "tester")
    assert (subject.status, subject.out_refund_no) == (S.REFUNDING, f"{subject.order_no}-R1")


def test_a_payment_cannot_arrive_for_an_order_wechat_never_knew() -> None:
    with pytest.raises(IllegalTransition):
        order(S.CREATED).transition(S.PAID, NOW)


def test_final_states_have_no_way_out() -> None:
    assert FINAL == {S.CREDITED, S.REFUNDED, S.CLOSED, S.REJECTED}
    for state in FINAL:
        assert not TRANSITIONS[state]


def test_a_transition_records_the_change_and_a_past_tense_event() -> None:
    subject = order(S.PAID)
    later = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
    subject.transition(S.CREDITED, later, actor="system", detail="confirmed")
    assert subject.updated_at == later
    assert [(c.from_status, c.to_status, c.actor, c.detail) for c in subject.changes] == [
        (S.PAID, S.CREDITED, "system", "confirmed")
    ]
    assert subject.events == [events.OrderCredited(subject.order_no, "confirmed")]


def test_every_state_but_created_has_an_event() -> None:
    for state in S:
        if state is not S.CREATED:
            assert type(events.for_status("R1", state)).__name__.startswith("Order")


def test_undecided_visits_are_counted_without_changing_the_age() -> None:
    subject = order(S.CREDIT_UNKNOWN)
    subject.note_undecided("DEADLINE_EXCEEDED")
    subject.note_undecided("UNAVAILABLE")
    assert (subject.attempts, subject.last_error, subject.updated_at) == (2, "UNAVAILABLE", NOW)
