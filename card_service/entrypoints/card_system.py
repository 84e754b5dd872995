"""``card.v1.CardSystem``: proto in -> command -> one use case -> proto out."""

from __future__ import annotations

import grpc

from card_service.domain import commands
from card_service.entrypoints import mappers
from card_service.service_layer import cards, consumes, recharges
from card_service.service_layer.context import CardContext
from protos.card.v1 import card_pb2, card_pb2_grpc
from rc_common.grpc_status import maps_errors

SERVICE = "/card.v1.CardSystem/"
#: Methods that take a card's lock: the DELAY fault holds that lock (``hold_if_delayed``).
LOCK_AWARE_METHODS = frozenset(
    SERVICE + name for name in ("PreRecharge", "ConfirmRecharge", "VoidRecharge", "Consume", "ReverseConsume")
)


class CardSystemServicer(card_pb2_grpc.CardSystemServicer):
    def __init__(self, ctx: CardContext) -> None:
        self._ctx = ctx

    @maps_errors
    async def PreRecharge(
        self, request: card_pb2.PreRechargeRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.PreRecharge:
        cmd = commands.StartPreRecharge(
            request.order_no, request.card_no, request.pay_amount_fen, request.merchant_id
        )
        return mappers.recharge_to_proto(await recharges.pre_recharge(self._ctx, cmd))

    @maps_errors
    async def ConfirmRecharge(
        self, request: card_pb2.ConfirmRechargeRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.PreRecharge:
        cmd = commands.ConfirmRecharge(request.order_no, request.merchant_id)
        return mappers.recharge_to_proto(await recharges.confirm_recharge(self._ctx, cmd))

    @maps_errors
    async def VoidRecharge(
        self, request: card_pb2.VoidRechargeRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.PreRecharge:
        cmd = commands.VoidRecharge(request.order_no, request.reason, request.merchant_id)
        return mappers.recharge_to_proto(await recharges.void_recharge(self._ctx, cmd))

    @maps_errors
    async def GetRecharge(
        self, request: card_pb2.GetRechargeRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.PreRecharge:
        commands.required("order_no", request.order_no)
        recharge = await recharges.get_recharge(self._ctx, request.order_no, request.merchant_id)
        return mappers.recharge_to_proto(recharge)

    @maps_errors
    async def GetCard(
        self, request: card_pb2.GetCardRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.Card:
        return mappers.card_to_proto(await cards.get_card(self._ctx, request.card_no, request.merchant_id))

    @maps_errors
    async def Consume(
        self, request: card_pb2.ConsumeRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.Consumption:
        cmd = commands.Consume(request.request_id, request.card_no, request.amount_fen, request.merchant_id)
        return mappers.consumption_to_proto(await consumes.consume(self._ctx, cmd))

    @maps_errors
    async def ReverseConsume(
        self, request: card_pb2.ReverseConsumeRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.Consumption:
        cmd = commands.ReverseConsume(request.request_id)
        return mappers.consumption_to_proto(await consumes.reverse_consume(self._ctx, cmd))

    @maps_errors
    async def ListJournal(
        self, request: card_pb2.ListJournalRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.ListJournalResponse:
        after = mappers.after_entry_id(request.card_no, request.page_token)
        page = await cards.list_journal(
            self._ctx, request.card_no, after, request.page_size, request.merchant_id
        )
        return card_pb2.ListJournalResponse(
            entries=[mappers.entry_to_proto(entry) for entry in page.entries],
            next_page_token=mappers.page_token(request.card_no, page.next_after_entry_id),
        )
