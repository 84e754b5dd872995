"""``card.v1.CardAdmin``: the card system's own operators (cards and each merchant's recharge rules)."""

from __future__ import annotations

import grpc

from card_service.domain import commands
from card_service.entrypoints import mappers
from card_service.service_layer import cards, export, rules
from card_service.service_layer.context import CardContext
from protos.card.v1 import card_pb2, card_pb2_grpc
from rc_common.grpc_status import maps_errors


class CardAdminServicer(card_pb2_grpc.CardAdminServicer):
    def __init__(self, ctx: CardContext) -> None:
        self._ctx = ctx

    @maps_errors
    async def OpenCard(
        self, request: card_pb2.OpenCardRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.Card:
        cmd = commands.OpenCard(request.card_no, request.merchant_id, request.holder_name)
        return mappers.card_to_proto(await cards.open_card(self._ctx, cmd))

    @maps_errors
    async def FreezeCard(
        self, request: card_pb2.FreezeCardRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.Card:
        return mappers.card_to_proto(await cards.freeze_card(self._ctx, request.card_no))

    @maps_errors
    async def UnfreezeCard(
        self, request: card_pb2.UnfreezeCardRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.Card:
        return mappers.card_to_proto(await cards.unfreeze_card(self._ctx, request.card_no))

    @maps_errors
    async def CloseCard(
        self, request: card_pb2.CloseCardRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.Card:
        return mappers.card_to_proto(await cards.close_card(self._ctx, request.card_no))

    @maps_errors
    async def SetRechargeRule(
        self, request: card_pb2.SetRechargeRuleRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.RechargeRule:
        tiers, limits = mappers.tiers_from_proto(request)
        cmd = commands.SetRechargeRule(request.merchant_id, tiers, limits)
        rule = await rules.set_recharge_rule(self._ctx, cmd)
        return mappers.rule_to_proto(rule)

    @maps_errors
    async def GetRechargeRule(
        self, request: card_pb2.GetRechargeRuleRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.RechargeRule:
        return mappers.rule_to_proto(await rules.get_recharge_rule(self._ctx, request.merchant_id))

    @maps_errors
    async def ExportJournal(
        self, request: card_pb2.ExportJournalRequest, context: grpc.aio.ServicerContext
    ) -> card_pb2.ExportJournalResponse:
        after = mappers.export_after(request.date, request.merchant_id, request.page_token)
        page = await export.export_journal(
            self._ctx, request.date, request.merchant_id, after, request.page_size
        )
        return card_pb2.ExportJournalResponse(
            entries=[mappers.exported_to_proto(item) for item in page.entries],
            next_page_token=mappers.export_token(request.date, request.merchant_id, page.next_after_entry_id),
        )
