"""The card system port over gRPC (``card.v1.CardSystem``)."""

from __future__ import annotations

import grpc

from protos.card.v1 import card_pb2, card_pb2_grpc
from rc_common.outcomes import Done, Rejected, Unknown
from recharge_service.adapters.retrying import RetryPolicy, with_retries
from recharge_service.service_layer.ports import CARD_METHODS, CardRecharge, Timeline


def _status(message: card_pb2.PreRecharge) -> str:
    return str(card_pb2.PreRechargeStatus.Name(message.status)).removeprefix("PRE_RECHARGE_STATUS_")


def _recharge(message: card_pb2.PreRecharge) -> CardRecharge:
    return CardRecharge(
        message.order_no, _status(message), message.bonus_fen, message.credit_amount_fen, message.rule_version
    )


def _converted(
    outcome: Done[card_pb2.PreRecharge] | Rejected | Unknown,
) -> Done[CardRecharge] | Rejected | Unknown:
    if isinstance(outcome, Done):
        return Done(_recharge(outcome.value), outcome.latency_ms)
    return outcome


class CardClient:
    """Every call retried on unknown outcomes; ConfirmRecharge has its own policy (the notify path)."""

    def __init__(
        self, channel: grpc.aio.Channel, timeline: Timeline, policy: RetryPolicy, confirm_policy: RetryPolicy
    ) -> None:
        self._stub = card_pb2_grpc.CardSystemStub(channel)
        self._timeline = timeline
        self._policy = policy
        self._confirm_policy = confirm_policy

    async def pre_recharge(
        self, order_no: str, card_no: str, pay_amount_fen: int
    ) -> Done[CardRecharge] | Rejected | Unknown:
        request = card_pb2.PreRechargeRequest(
            order_no=order_no, card_no=card_no, pay_amount_fen=pay_amount_fen
        )
        return _converted(
            await with_retries(
                CARD_METHODS + "PreRecharge",
                order_no,
                lambda deadline: self._stub.PreRecharge(request, timeout=deadline),
                self._policy,
                self._timeline,
                announce=True,
                describe=_status,
            )
        )

    async def confirm_recharge(self, order_no: str) -> Done[CardRecharge] | Rejected | Unknown:
        request = card_pb2.ConfirmRechargeRequest(order_no=order_no)
        return _converted(
            await with_retries(
                CARD_METHODS + "ConfirmRecharge",
                order_no,
                lambda deadline: self._stub.ConfirmRecharge(request, timeout=deadline),
                self._confirm_policy,
                self._timeline,
                announce=True,
                describe=_status,
            )
        )

    async def void_recharge(self, order_no: str, reason: str) -> Done[CardRecharge] | Rejected | Unknown:
        request = card_pb2.VoidRechargeRequest(order_no=order_no, reason=reason)
        return _converted(
            await with_retries(
                CARD_METHODS + "VoidRecharge",
                order_no,
                lambda deadline: self._stub.VoidRecharge(request, timeout=deadline),
                self._policy,
                self._timeline,
                announce=True,
                describe=_status,
            )
        )

    async def get_recharge(self, order_no: str) -> Done[CardRecharge] | Rejected | Unknown:
        request = card_pb2.GetRechargeRequest(order_no=order_no)
        return _converted(
            await with_retries(
                CARD_METHODS + "GetRecharge",
                order_no,
                lambda deadline: self._stub.GetRecharge(request, timeout=deadline),
                self._policy,
                self._timeline,
                describe=_status,
            )
        )
