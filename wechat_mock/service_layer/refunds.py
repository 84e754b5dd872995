"""Use cases of refunds: create (accept), query, and settle when due (the bank's answer)."""

from __future__ import annotations

from datetime import datetime, timedelta

from rc_common.errors import NotFound
from rc_common.faults import FaultKind
from rc_common.logs import get_logger
from wechat_mock.domain import ids, validation
from wechat_mock.domain.notifications import refund_draft
from wechat_mock.domain.refunds import Refund, RefundStatus, RefundTerms
from wechat_mock.service_layer import commands
from wechat_mock.service_layer.context import Context
from wechat_mock.service_layer.payments import load_order
from wechat_mock.service_layer.unit_of_work import retrying

log = get_logger("wechat.refunds")

CREATE_REFUND_METHOD = "/wechatpay.v1.PaymentGateway/CreateRefund"
REFUND_FAULTS = frozenset({FaultKind.REFUND_PROCESSING, FaultKind.REFUND_ABNORMAL})


def _validate(cmd: commands.CreateRefund) -> RefundTerms:
    validation.out_trade_no(cmd.out_trade_no)
    validation.out_refund_no(cmd.out_refund_no)
    validation.positive_fen(cmd.refund_fen, "refund_fen")
    validation.positive_fen(cmd.total_fen, "total_fen")
    return RefundTerms(cmd.out_trade_no, cmd.refund_fen, cmd.total_fen)


def _plan(ctx: Context) -> tuple[float, RefundStatus]:
    """How long the new refund stays PROCESSING and how it ends (faults may change both)."""
    delay_s, outcome = ctx.refund_delay_s, RefundStatus.SUCCESS
    rule = ctx.faults.draw(CREATE_REFUND_METHOD, REFUND_FAULTS)
    if rule is not None:
        log.info("fault_injected", method=CREATE_REFUND_METHOD, kind=rule.kind.name, delay_ms=rule.delay_ms)
        delay_s = max(delay_s, rule.delay_s)
        if rule.kind is FaultKind.REFUND_ABNORMAL:
            outcome = RefundStatus.ABNORMAL
    return delay_s, outcome


async def create_refund(cmd: commands.CreateRefund, ctx: Context) -> Refund:
    """Accept a refund (PROCESSING). The same out_refund_no with the same parameters returns the
    refund already accepted; the order's refunds never exceed what was paid."""
    terms = _validate(cmd)

    async def attempt() -> Refund:
        async with ctx.uow() as uow:
            existing = await uow.refunds.get(cmd.out_refund_no)
            if existing is not None:
                existing.check_replay(terms)
                return existing
            order = await load_order(uow, cmd.out_trade_no, for_update=True)
            # Look again under the order's lock: a concurrent retry may have committed it meanwhile.
            existing = await uow.refunds.get(cmd.out_refund_no)
            if existing is not None:
                existing.check_replay(terms)
                return existing
            committed_fen = await uow.refunds.committed_fen(order.out_trade_no)
            order.check_refundable(cmd.refund_fen, cmd.total_fen, committed_fen)
            now = ctx.clock()
            delay_s, outcome = _plan(ctx)
            refund = Refund(
                out_refund_no=cmd.out_refund_no,
                refund_id=ids.refund_id(now),
                terms=terms,
                transaction_id=order.transaction_id,
                reason=cmd.reason,
                created_at=now,
                due_at=now + timedelta(seconds=delay_s),
                outcome=outcome,
            )
            await uow.refunds.add(refund)
            await uow.commit()
        log.info("refund_accepted", out_refund_no=refund.out_refund_no, refund_fen=refund.refund_fen,
                 due_in_s=delay_s, outcome=outcome.value)
        return refund

    return await retrying(attempt)


async def query_refund(out_refund_no: str, ctx: Context) -> Refund:
    validation.out_refund_no(out_refund_no)
    async with ctx.uow(readonly=True) as uow:
        refund = await uow.refunds.get(out_refund_no)
    if refund is None:
        raise NotFound(f"RESOURCE_NOT_EXISTS: no refund with out_refund_no {out_refund_no}")
    return refund


async def settle_refund(out_refund_no: str, ctx: Context, status: RefundStatus | None = None) -> Refund:
    """Settle one PROCESSING refund (its planned outcome, or ``status``): update the order on
    SUCCESS and queue the REFUND.* notification, in one commit. Settled refunds are returned as is."""

    async def attempt() -> Refund:
        async with ctx.uow() as uow:
            refund = await uow.refunds.get(out_refund_no, for_update=True)
            if refund is None:
                raise NotFound(f"RESOURCE_NOT_EXISTS: no refund with out_refund_no {out_refund_no}")
            now = ctx.clock()
            if not refund.settle(now, status):
                return refund
            order = await load_order(uow, refund.out_trade_no, for_update=True)
            if refund.status is RefundStatus.SUCCESS:
                order.record_refund(refund.refund_fen)
                await uow.orders.update(order)
            await uow.refunds.update(refund)
            await uow.notifications.add(ctx.wire.seal(refund_draft(refund, order, ctx.mchid), now))
            await uow.commit()
        log.info("refund_settled", out_refund_no=refund.out_refund_no, status=refund.status.value)
        return refund

    return await retrying(attempt)


async def settle_now(out_refund_no: str, status: RefundStatus, ctx: Context) -> Refund:
    """The bank answers now (PayerSimulator.SettleRefund): SUCCESS, CLOSED or ABNORMAL."""
    validation.out_refund_no(out_refund_no)
    return await settle_refund(out_refund_no, ctx, status)


async def settle_due_refunds(ctx: Context, batch: int = 50) -> datetime | None:
    """Settle every refund whose time has come; returns when the next one is due (or None)."""
    async with ctx.uow(readonly=True) as uow:
        due = await uow.refunds.due(ctx.clock(), batch)
    for refund in due:
        await settle_refund(refund.out_refund_no, ctx)
    if len(due) == batch:
        return ctx.clock()
    async with ctx.uow(readonly=True) as uow:
        return await uow.refunds.next_due()
