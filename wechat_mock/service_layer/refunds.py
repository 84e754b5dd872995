"""Use cases of refunds: create (accept), query, and settle when due (the bank's answer)."""

from __future__ import annotations

from datetime import datetime, timedelta

from rc_common.errors import NotFound, Refused
from rc_common.faults import FaultKind
from rc_common.logs import get_logger
from wechat_mock.domain import ids, validation
from wechat_mock.domain.merchants import MerchantRef
from wechat_mock.domain.notifications import refund_draft
from wechat_mock.domain.payments import PaymentOrder
from wechat_mock.domain.refunds import Refund, RefundStatus, RefundTerms
from wechat_mock.service_layer import commands
from wechat_mock.service_layer.context import Context
from wechat_mock.service_layer.payments import load_order
from wechat_mock.service_layer.unit_of_work import UnitOfWork, retrying

log = get_logger("wechat.refunds")

CREATE_REFUND_METHOD = "/wechatpay.v1.PaymentGateway/CreateRefund"
REFUND_FAULTS = frozenset({FaultKind.REFUND_PROCESSING, FaultKind.REFUND_ABNORMAL})
#: How the refund settler's batches are counted (``Database.stats.labelled``).
SETTLER_LABEL = "refund_settler"


def _validate(cmd: commands.CreateRefund) -> RefundTerms:
    validation.out_trade_no(cmd.out_trade_no)
    validation.out_refund_no(cmd.out_refund_no)
    validation.positive_fen(cmd.refund_fen, "refund_fen")
    validation.positive_fen(cmd.total_fen, "total_fen")
    validation.notify_url(cmd.notify_url)
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
    refund already accepted; the order's refunds never exceed what was paid: the decision is taken
    on reads, and the insert re-checks the remaining amount and the number in the same statement
    (a lost race re-runs the use case, which then answers the replay or NOT_ENOUGH).

    Another merchant's order is NOT_FOUND (ORDER_NOT_EXIST), as a missing one; an out_refund_no
    that another merchant used (unique across merchants here) is REFUND_NO_CONFLICT."""
    merchant = ctx.accounts.require(cmd.merchant)
    terms = _validate(cmd)

    async def attempt() -> Refund:
        async with ctx.uow() as uow:
            existing, committed_fen = await uow.refunds.get_with_committed_fen(
                cmd.out_refund_no, cmd.out_trade_no
            )
            if existing is not None and existing.belongs_to(merchant):
                existing.check_replay(terms)
                return existing
            order = await load_order(uow, cmd.out_trade_no, merchant)
            if existing is not None:
                raise Refused(
                    "REFUND_NO_CONFLICT", f"{cmd.out_refund_no}: out_refund_no used by another merchant"
                )
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
                merchant=order.merchant,
                notify_url=cmd.notify_url,
            )
            uow.refunds.add(refund)
            await uow.commit()
        log.info(
            "refund_accepted",
            out_refund_no=refund.out_refund_no,
            refund_fen=refund.refund_fen,
            due_in_s=delay_s,
            outcome=outcome.value,
        )
        return refund

    return await retrying(attempt)


def refund_not_found(out_refund_no: str) -> NotFound:
    return NotFound(f"RESOURCE_NOT_EXISTS: no refund with out_refund_no {out_refund_no}")


async def query_refund(out_refund_no: str, merchant_ref: MerchantRef, ctx: Context) -> Refund:
    """The merchant's refund; another merchant's is NOT_FOUND, as a missing one."""
    merchant = ctx.accounts.require(merchant_ref)
    validation.out_refund_no(out_refund_no)
    async with ctx.uow(readonly=True) as uow:
        refund = await uow.refunds.get(out_refund_no)
    if refund is None or not refund.belongs_to(merchant):
        raise refund_not_found(out_refund_no)
    return refund


def _stage_settlements(
    uow: UnitOfWork,
    ctx: Context,
    due: list[Refund],
    orders: dict[str, PaymentOrder],
    now: datetime,
    status: RefundStatus | None = None,
) -> list[Refund]:
    """Settle PROCESSING refunds (their planned outcome, or ``status``) and stage them: on SUCCESS
    the order records the refund; each settled refund queues its REFUND.* notification. Refunds
    are written first, then their orders, then the notifications: one lock order for every
    settlement, so concurrent ones never deadlock on PostgreSQL. Returns the refunds settled."""
    settled = [r for r in sorted(due, key=lambda r: r.out_refund_no) if r.settle(now, status)]
    changed: set[str] = set()
    for refund in settled:
        uow.refunds.update(refund)
        if refund.status is RefundStatus.SUCCESS:
            orders[refund.out_trade_no].record_refund(refund.refund_fen)
            changed.add(refund.out_trade_no)
    for out_trade_no in sorted(changed):
        uow.orders.update(orders[out_trade_no])
    uow.notifications.add(*(ctx.wire.seal(refund_draft(r, orders[r.out_trade_no]), now) for r in settled))
    return settled


async def settle_refund(out_refund_no: str, ctx: Context, status: RefundStatus | None = None) -> Refund:
    """Settle one PROCESSING refund (its planned outcome, or ``status``): update the order on
    SUCCESS and queue the REFUND.* notification, in one commit. Settled refunds are returned as is."""

    async def attempt() -> Refund:
        async with ctx.uow() as uow:
            refund = await uow.refunds.get(out_refund_no)
            if refund is None:
                raise refund_not_found(out_refund_no)
            if refund.status is not RefundStatus.PROCESSING:
                return refund
            order = await load_order(uow, refund.out_trade_no)
            _stage_settlements(uow, ctx, [refund], {order.out_trade_no: order}, ctx.clock(), status)
            await uow.commit()
        log.info("refund_settled", out_refund_no=refund.out_refund_no, status=refund.status.value)
        return refund

    return await retrying(attempt)


async def settle_now(out_refund_no: str, status: RefundStatus, ctx: Context) -> Refund:
    """The bank answers now (PayerSimulator.SettleRefund): SUCCESS, CLOSED or ABNORMAL."""
    validation.out_refund_no(out_refund_no)
    return await settle_refund(out_refund_no, ctx, status)


async def settle_due_refunds(ctx: Context, batch: int = 50) -> datetime | None:
    """Settle every refund whose time has come, ``batch`` at a time in one commit; returns when
    the next one is due (or None)."""
    settled = await retrying(lambda: _settle_due_batch(ctx, batch))
    if settled == batch:
        return ctx.clock()
    async with ctx.uow(readonly=True) as uow:
        return await uow.refunds.next_due()


async def _settle_due_batch(ctx: Context, batch: int) -> int:
    """One commit for up to ``batch`` due refunds; returns how many were due."""
    async with ctx.uow(label=SETTLER_LABEL) as uow:
        now = ctx.clock()
        due = await uow.refunds.due(now, batch)
        if not due:
            return 0
        orders = await uow.orders.get_many(r.out_trade_no for r in due)
        settled = _stage_settlements(uow, ctx, due, orders, now)
        await uow.commit()
    for refund in settled:
        log.info("refund_settled", out_refund_no=refund.out_refund_no, status=refund.status.value)
    return len(due)
