"""The card system port over gRPC (``card.v1.CardSystem``)."""

from __future__ import annotations

import grpc

from protos.card.v1 import card_pb2, card_pb2_grpc
from rc_common.outcomes import Done, Rejected, Unknown
from recharge_service.adapters.grpc_calls import RpcCaller
from recharge_service.adapters.retrying import RetryPolicy
from recharge_service.service_layer.ports import CARD_METHODS, CardRecharge, Timeline

Answer = Done[CardRecharge] | Rejected | Unknown


def _status(message: card_pb2.PreRecharge) -> str:
    return str(card_pb2.PreRechargeStatus.Name(message.status)).removeprefix("PRE_RECHARGE_STATUS_")


def _recharge(message: card_pb2.PreRecharge) -> CardRecharge:
    return CardRecharge(
        message.order_no, _status(message), message.bonus_fen, message.credit_amount_fen, message.rule_version
    )


class CardClient:
    """Every call retried on unknown outcomes; ConfirmRecharge has its own policy (the notify path)."""

    def __init__(
        self, channel: grpc.aio.Channel, timeline: Timeline, policy: RetryPolicy, confirm_policy: RetryPolicy
    ) -> None:
        self._rpc = RpcCaller(card_pb2_grpc.CardSystemStub(channel), CARD_METHODS, timeline, policy)
        self._confirm_policy = confirm_policy

    async def _call(
        self,
        rpc: str,
        request: object,
        order_no: str,
        *,
        announce: bool = True,
        policy: RetryPolicy | None = None,
    ) -> Answer:
        return await self._rpc.call(
            rpc, request, order_no, _recharge, announce=announce, describe=_status, policy=policy
        )

    async def pre_recharge(
        self, order_no: str, card_no: str, pay_amount_fen: int, merchant_id: str
    ) -> Answer:
        request = card_pb2.PreRechargeRequest(
            merchant_id=merchant_id, order_no=order_no, card_no=card_no, pay_amount_fen=pay_amount_fen
        )
        return await self._call("PreRecharge", request, order_no)

    async def confirm_recharge(self, order_no: str, merchant_id: str) -> Answer:
        request = card_pb2.ConfirmRechargeRequest(order_no=order_no, merchant_id=merchant_id)
        return await self._call("ConfirmRecharge", request, order_no, policy=self._confirm_policy)

    async def void_recharge(self, order_no: str, reason: str, merchant_id: str) -> Answer:
        request = card_pb2.VoidRechargeRequest(order_no=order_no, reason=reason, merchant_id=merchant_id)
        return await self._call("VoidRecharge", request, order_no)

    async def get_recharge(self, order_no: str, merchant_id: str) -> Answer:
        request = card_pb2.GetRechargeRequest(order_no=order_no, merchant_id=merchant_id)
        return await self._call("GetRecharge", request, order_no, announce=False)
