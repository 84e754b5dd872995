"""InspectOrder: one order as we, the card system and WeChat Pay see it now, and what each operator
action would do — the console's order and resolve screens. Read-only: no lease, no write.

The other systems are asked through ``Lookups``: the same ports as the flows (the card system's
``GetRecharge``, WeChat's ``QueryOrder`` and ``QueryRefund``), one attempt each within the normal
per-call deadline, side by side, recording nothing. Each answer is a ``RemoteView``: done (it
answered), refused (it answered that it has no such thing, or no) or unknown (no answer in time) —
an unknown view is part of the answer, never a failure of the call.

The previews apply ``resolve_rules`` — the functions ``resolve.py`` acts by — to the order and these
views, and four eyes' own rule (``FourEyes.needs_approval``) for ``needs_approval``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rc_common.errors import InvalidArgument
from rc_common.outcomes import Done, Rejected, Unknown
from recharge_service.domain.answers import NOT_FOUND
from recharge_service.domain.approval import Approval
from recharge_service.domain.merchant import check_merchant_id
from recharge_service.domain.numbers import money
from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.service_layer import resolve_rules as rules
from recharge_service.service_layer.commands import ResolveAction
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.four_eyes import FourEyes
from recharge_service.service_layer.merchants import wechat_account
from recharge_service.service_layer.orders import load_order
from recharge_service.service_layer.ports import CardSystem, PaymentGateway
from recharge_service.service_layer.storage import StorageError

S = OrderStatus
DONE, REFUSED, UNKNOWN = "done", "refused", "unknown"


@dataclass(frozen=True)
class Lookups:
    """Read-only ports for InspectOrder: one attempt per query, nothing put on any timeline."""

    card: CardSystem
    payments: PaymentGateway


@dataclass(frozen=True)
class RemoteView:
    """``outcome``: done / refused / unknown ("" for a view not asked: no refund). ``state``: the
    other system's word (the card's RECHARGING / SUCCEEDED / VOIDED or NOT_FOUND; WeChat's
    trade_state or refund status, or NOT_FOUND)."""

    outcome: str
    state: str = ""
    detail: str = ""
    amount_fen: int = 0
    asked_at: datetime | None = None

    @property
    def answered(self) -> bool:
        return self.outcome in (DONE, REFUSED)


NOT_ASKED = RemoteView("")


@dataclass(frozen=True)
class ActionPreview:
    action: ResolveAction
    allowed: bool
    effect: str
    refused_reason: str = ""
    needs_approval: bool = False


@dataclass(frozen=True)
class Inspection:
    order: RechargeOrder
    card: RemoteView
    trade: RemoteView
    refund: RemoteView
    actions: list[ActionPreview]
    pending_approval: Approval | None
    age: timedelta
    hold: timedelta


async def inspect_order(
    deps: Deps,
    lookups: Lookups,
    four_eyes: FourEyes,
    hold: timedelta,
    order_no: str,
    merchant_id: str = "",
) -> Inspection:
    """With ``merchant_id``, another merchant's order is NOT_FOUND."""
    if merchant_id:
        check_merchant_id(merchant_id)
    if not order_no:
        raise InvalidArgument("order_no", "required")
    order = await load_order(deps, order_no, merchant_id=merchant_id)
    card, trade, refund = await asyncio.gather(
        card_view(deps, lookups, order), trade_view(deps, lookups, order), refund_view(deps, lookups, order)
    )
    async with deps.uow(readonly=True) as uow:
        pending = await uow.approvals.pending_for(order_no, ResolveAction.REFUND.name)
    actions = previews(order, card, trade, refund, four_eyes)
    return Inspection(order, card, trade, refund, actions, pending, deps.clock() - order.updated_at, hold)


def _view(
    outcome: Done[Any] | Rejected | Unknown, at: datetime, state: str, detail: str, amount_fen: int = 0
) -> RemoteView:
    if isinstance(outcome, Done):
        return RemoteView(DONE, state, detail, amount_fen, at)
    if isinstance(outcome, Rejected):
        said = outcome.code if outcome.code == NOT_FOUND else outcome.reason
        return RemoteView(REFUSED, said, outcome.detail, 0, at)
    return RemoteView(UNKNOWN, "", f"{outcome.code}: {outcome.detail}".strip(": "), 0, at)


async def card_view(deps: Deps, lookups: Lookups, order: RechargeOrder) -> RemoteView:
    at = deps.clock()
    answer = await lookups.card.get_recharge(order.order_no, order.merchant_id)
    if isinstance(answer, Done):
        found = answer.value
        detail = (
            f"credit {money(found.credit_amount_fen)} (bonus {money(found.bonus_fen)}, "
            f"rule v{found.rule_version})"
        )
        return _view(answer, at, found.status, detail, found.credit_amount_fen)
    return _view(answer, at, "", "")


async def trade_view(deps: Deps, lookups: Lookups, order: RechargeOrder) -> RemoteView:
    at = deps.clock()
    try:
        account = await wechat_account(deps.merchants, order)
    except (LookupError, StorageError) as exc:
        return RemoteView(UNKNOWN, "", f"not asked: the order's merchant configuration: {exc}", 0, at)
    answer = await lookups.payments.query_order(account, order.order_no)
    if isinstance(answer, Done):
        trade = answer.value
        paid = f", paid {trade.success_time}" if trade.success_time else ""
        detail = f"transaction {trade.transaction_id}{paid}" if trade.transaction_id else ""
        return _view(answer, at, trade.trade_state, detail, trade.amount_total_fen)
    return _view(answer, at, "", "")


async def refund_view(deps: Deps, lookups: Lookups, order: RechargeOrder) -> RemoteView:
    if not order.out_refund_no:
        return NOT_ASKED
    at = deps.clock()
    try:
        account = await wechat_account(deps.merchants, order)
    except (LookupError, StorageError) as exc:
        return RemoteView(UNKNOWN, "", f"not asked: the order's merchant configuration: {exc}", 0, at)
    answer = await lookups.payments.query_refund(account, order.order_no, order.out_refund_no)
    if isinstance(answer, Done):
        found = answer.value
        detail = f"refund {found.out_refund_no}" + (f", id {found.refund_id}" if found.refund_id else "")
        return _view(answer, at, found.status, detail, found.refund_fen)
    return _view(answer, at, "", "")


# -- previews: the rules resolve.py acts by, applied to the views -------------------------------


def previews(
    order: RechargeOrder, card: RemoteView, trade: RemoteView, refund: RemoteView, four_eyes: FourEyes
) -> list[ActionPreview]:
    return [
        _preview(ResolveAction.RETRY_NOW, retry_check(order, card, trade, refund)),
        _preview(
            ResolveAction.REFUND,
            refund_check(order, card, refund),
            four_eyes if four_eyes.needs_approval(ResolveAction.REFUND, order) else None,
        ),
        _preview(ResolveAction.CONFIRM_CREDIT, confirm_check(order, card)),
    ]


def _preview(action: ResolveAction, check: rules.Check, four_eyes: FourEyes | None = None) -> ActionPreview:
    if four_eyes is not None and check.runs:
        effect = f"{check.says}; it waits for a second operator ({four_eyes.describe()})"
        return ActionPreview(action, True, effect, "", needs_approval=True)
    return ActionPreview(action, check.runs, check.says, "" if check.runs else check.reason)


def _seen(view: RemoteView, name: str) -> str:
    if not view.outcome:
        return ""
    if view.outcome == UNKNOWN:
        return f"{name}: no answer"
    return f"{name}: {view.state}"


def retry_check(order: RechargeOrder, card: RemoteView, trade: RemoteView, refund: RemoteView) -> rules.Check:
    check = rules.retry_now(order)
    if not check.runs or order.status is not S.MANUAL_REVIEW:
        return check
    seen = ", ".join(s for s in (_seen(card, "card"), _seen(trade, "WeChat"), _seen(refund, "refund")) if s)
    return rules.run(f"{check.says} (now {seen})") if seen else check


def refund_check(order: RechargeOrder, card: RemoteView, refund: RemoteView) -> rules.Check:
    check = rules.refund(order)
    if not check.runs:
        return check
    if order.status is S.MANUAL_REVIEW and order.out_refund_no and refund.answered:
        known = rules.asked_refund(order, refund.state)
        if known is not None:
            return known
    if order.status is S.REFUNDING or not card.answered:
        return check
    given = rules.refund_given_card(card.state)
    return given if not given.runs else rules.run(f"{check.says}; {given.says}")


def confirm_check(order: RechargeOrder, card: RemoteView) -> rules.Check:
    check = rules.confirm_credit(order)
    if not check.runs:
        return check
    if not card.answered:
        return rules.run(f"{check.says} (the card system did not answer just now)")
    detail = card.detail if card.outcome == REFUSED else ""
    return rules.confirm_given_card(card.state, detail)
