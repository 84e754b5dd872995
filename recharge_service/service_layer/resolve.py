"""ResolveAnomaly: operators' actions, fenced exactly like the sentinel, each on the timeline with
who and why (``operator_action`` rows: one when asked, one with the result).

The operator first takes the order's lease, so the sentinel and other operators keep off while
the action runs (held by someone else -> UNAVAILABLE ORDER_BUSY, try again).

- RETRY_NOW: the sentinel's step for the order now, ignoring the hold. For an order in
  MANUAL_REVIEW: look again and take only what the other systems have already decided (the card
  says SUCCEEDED -> CREDITED, WeChat says the refund SUCCEEDED -> REFUNDED, never paid and past
  expiry -> closed at WeChat, voided -> CLOSED); otherwise say what was found.
- REFUND: the refund path — void first, then the order's one refund number. The card says the
  credit landed -> refused CARD_CREDITED and the order becomes CREDITED; the void's outcome is
  unknown -> UNAVAILABLE, nothing refunded. A refund already asked for is looked up first.
- CONFIRM_CREDIT: CREDITED only when the card system says SUCCEEDED (``GetRecharge``, and
  ``ConfirmRecharge`` while the pre-recharge is RECHARGING); else refused CARD_NOT_CREDITED.

The rules themselves (what each action allows, what each answer means) are ``resolve_rules.py``,
shared with InspectOrder's previews. Four eyes (``four_eyes.py``): a REFUND of an order whose pay
amount is above the threshold, which the rules would let run, runs nothing — it is recorded as a
PENDING approval (``APPROVAL_REQUIRED``); a second operator's ``DecideApproval`` then runs it here,
through ``act_holding``, exactly as an operator's REFUND (``approve.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from rc_common.errors import Refused, ServiceError, Unavailable
from rc_common.outcomes import Done, Rejected
from recharge_service.domain.answers import NOT_FOUND, CardState, RefundState
from recharge_service.domain.approval import Approval
from recharge_service.domain.order import SENTINEL_STATES, OrderStatus, RechargeOrder
from recharge_service.domain.timeline import OPERATOR_ACTION, TimelineEntry
from recharge_service.service_layer import refund, settle
from recharge_service.service_layer import resolve_rules as rules
from recharge_service.service_layer.actor import acting_as
from recharge_service.service_layer.commands import ResolveAction, ResolveAnomaly
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.four_eyes import APPROVAL_REQUIRED, FourEyes, request_approval
from recharge_service.service_layer.holding import OrderLease, acquire, holding, release
from recharge_service.service_layer.holding import check as check_lease
from recharge_service.service_layer.merchants import wechat_account
from recharge_service.service_layer.orders import flow, load_order
from recharge_service.service_layer.sentinel import SentinelPolicy, visit
from recharge_service.service_layer.steps import Step
from recharge_service.service_layer.timeline_notes import write_apart
from recharge_service.service_layer.unpaid import PAID_STATES, close_then_void, paid_path
from recharge_service.service_layer.visits import VisitLog

S = OrderStatus


@dataclass(frozen=True)
class Resolution:
    order: RechargeOrder
    outcome: str
    #: Four eyes: the approval the action now waits for (``outcome`` APPROVAL_REQUIRED).
    approval: Approval | None = None


async def resolve_anomaly(
    deps: Deps, policy: SentinelPolicy, command: ResolveAnomaly, four_eyes: FourEyes | None = None
) -> Resolution:
    """The operator's action on the order, under its lease; with ``four_eyes``, a REFUND above
    its threshold that the rules allow is only recorded as a PENDING approval (a repeat answers
    the same one), and nothing runs."""
    order_no, action, operator, reason = command.validated()
    order = await load_order(deps, order_no, merchant_id=command.merchant_id)  # NotFound first
    if four_eyes is not None and four_eyes.needs_approval(action, order):
        approval = await request_approval(deps, order, action.name, operator, reason, four_eyes)
        return Resolution(order, APPROVAL_REQUIRED, approval)
    async with operator_lease(deps, policy, order_no) as lease:
        return await act_holding(deps, policy, lease, action, operator, reason, f"{operator}: {reason}")


@contextlib.asynccontextmanager
async def operator_lease(deps: Deps, policy: SentinelPolicy, order_no: str) -> AsyncIterator[OrderLease]:
    """The order's lease for an operator (held by someone else: UNAVAILABLE ORDER_BUSY)."""
    lease = await acquire(deps, order_no, f"{policy.owner}:operator", policy.lease)
    if lease is None:
        raise Unavailable("ORDER_BUSY", "the sentinel or an operator is working on this order; try again")
    try:
        yield lease
    finally:
        await release(deps, lease)


async def act_holding(
    deps: Deps,
    policy: SentinelPolicy,
    lease: OrderLease,
    action: ResolveAction,
    operator: str,
    detail: str,
    why: str,
) -> Resolution:
    """Run ``action`` holding ``lease`` as ``operator``, on the timeline: ``requested`` (with
    ``detail``), then ``done`` or ``refused``; ``why`` goes with the calls it makes (the void's
    reason)."""
    order_no = lease.order_no
    await _record(deps, order_no, operator, action, "requested", detail)
    try:
        with acting_as(operator):
            async with holding(deps, lease), flow(deps):
                resolution = await _act(deps, policy, lease.owner, action, order_no, why)
    except ServiceError as exc:
        code = getattr(exc, "reason", type(exc).__name__)
        await _record(deps, order_no, operator, action, "refused", f"{code}: {exc.message}")
        raise
    await _record(deps, order_no, operator, action, "done", resolution.outcome)
    return resolution


async def _act(
    deps: Deps, policy: SentinelPolicy, owner: str, action: ResolveAction, order_no: str, why: str
) -> Resolution:
    if action is ResolveAction.RETRY_NOW:
        return await retry_now(deps, policy, owner, order_no)
    if action is ResolveAction.REFUND:
        return await refund_now(deps, order_no, why)
    return await confirm_credit(deps, order_no)


async def retry_now(deps: Deps, policy: SentinelPolicy, owner: str, order_no: str) -> Resolution:
    order = await load_order(deps, order_no)
    check = rules.retry_now(order)
    if not check.runs:
        return Resolution(order, check.says)
    if order.status in SENTINEL_STATES:
        done = await visit(deps, policy, order_no, VisitLog(deps, owner))
        return Resolution(done.order, f"{done.category}: {done.detail}")
    step = await review_step(deps, order)
    return Resolution(step.order, step.detail)


async def review_step(deps: Deps, order: RechargeOrder) -> Step:
    """Look again at an order in MANUAL_REVIEW; act only on what is already decided elsewhere."""
    order_no = order.order_no
    if not order.transaction_id:
        found = await deps.payments.query_order(await wechat_account(deps.merchants, order), order_no)
        if isinstance(found, Done) and found.value.trade_state in PAID_STATES:
            step = await paid_path(deps, found.value)
            return Step(step.order, f"{step.detail}; now CONFIRM_CREDIT or REFUND")
        if isinstance(found, Done) and deps.clock() >= order.expires_at:
            return await close_then_void(deps, order)
        if isinstance(found, Done):
            return Step(order, f"WeChat: {found.value.trade_state}, not expired yet")
        raise Unavailable("WECHAT_UNAVAILABLE", f"QueryOrder did not answer: {found.code}")
    if order.out_refund_no:
        account = await wechat_account(deps.merchants, order)
        asked = await deps.payments.query_refund(account, order_no, order.out_refund_no)
        if isinstance(asked, Done) and asked.value.status == RefundState.SUCCESS:
            ended = await settle.mark_refunded(deps, order_no, f"refund {order.out_refund_no} SUCCESS")
            return Step(ended, f"refund {order.out_refund_no}: SUCCESS")
        if isinstance(asked, Done):
            return Step(order, f"refund {order.out_refund_no}: {asked.value.status} at WeChat")
        if isinstance(asked, Rejected) and asked.code == NOT_FOUND:
            return Step(order, f"refund {order.out_refund_no} never reached WeChat: REFUND sends it")
        raise Unavailable("WECHAT_UNAVAILABLE", f"QueryRefund did not answer: {asked.code}")
    card = await deps.card.get_recharge(order_no, order.merchant_id)
    if isinstance(card, Done) and card.value.status == CardState.SUCCEEDED:
        ended = await settle.mark_credited(deps, order_no, "card system says SUCCEEDED")
        return Step(ended, "card: SUCCEEDED")
    if isinstance(card, Done):
        return Step(order, f"card: {card.value.status}; CONFIRM_CREDIT or REFUND decides")
    if isinstance(card, Rejected):
        return Step(order, f"card refused GetRecharge: {card.reason}; REFUND voids first")
    raise Unavailable("CARD_UNAVAILABLE", f"GetRecharge did not answer: {card.code}")


async def refund_now(deps: Deps, order_no: str, why: str) -> Resolution:
    order = await load_order(deps, order_no)
    check = rules.refund(order)
    check.enforce()
    if not check.runs:
        return Resolution(order, check.says)
    if order.out_refund_no and order.status is S.MANUAL_REVIEW:
        account = await wechat_account(deps.merchants, order)
        asked = await deps.payments.query_refund(account, order_no, order.out_refund_no)
        if isinstance(asked, Rejected) and asked.code == NOT_FOUND:
            known = rules.asked_refund(order, NOT_FOUND)
        elif isinstance(asked, Done):
            known = rules.asked_refund(order, asked.value.status)
        else:
            raise Unavailable("WECHAT_UNAVAILABLE", "QueryRefund did not answer; nothing was done")
        if known is not None:
            known.enforce()
            if isinstance(asked, Done) and asked.value.status == RefundState.SUCCESS:
                ended = await settle.mark_refunded(deps, order_no, f"refund {order.out_refund_no} SUCCESS")
                return Resolution(ended, f"refund {order.out_refund_no}: SUCCESS")
            return Resolution(order, known.says)
    ended, void = await refund.void_then_refund(deps, order_no, f"operator refund ({why})")
    if ended.status is S.CREDITED:  # the void answered SUCCEEDED: the credit won
        rules.refund_given_card(CardState.SUCCEEDED).enforce()
    if void is not None and not (isinstance(void, Done) and void.value.status == CardState.VOIDED):
        if isinstance(void, Rejected):
            raise Refused("VOID_REFUSED", f"the card system refused the void ({void.reason}): no refund")
        if isinstance(void, Done):
            raise Refused("VOID_REFUSED", f"the void answered {void.value.status}: nothing refunded")
        raise Unavailable("CARD_UNAVAILABLE", f"the void's outcome is unknown ({void.code}): no refund")
    return Resolution(ended, f"voided; refund {ended.out_refund_no}: {ended.status.name}")


async def confirm_credit(deps: Deps, order_no: str) -> Resolution:
    order = await load_order(deps, order_no)
    check = rules.confirm_credit(order)
    check.enforce()
    if not check.runs:
        return Resolution(order, check.says)
    card = await deps.card.get_recharge(order_no, order.merchant_id)
    if isinstance(card, Done) and card.value.status == CardState.RECHARGING:  # confirm_given_card
        check_lease(order_no)  # changes something elsewhere: only while ours
        card = await deps.card.confirm_recharge(order_no, order.merchant_id)
    if isinstance(card, Done):
        rules.card_credited(card.value.status).enforce()
        ended = await settle.mark_credited(deps, order_no, "operator: the card system says SUCCEEDED")
        return Resolution(ended, "card: SUCCEEDED -> CREDITED")
    if isinstance(card, Rejected):
        rules.card_credited(card.reason, card.detail).enforce()
    raise Unavailable("CARD_UNAVAILABLE", f"the card system did not answer ({card.code}): nothing changed")


async def _record(
    deps: Deps, order_no: str, operator: str, action: ResolveAction, outcome: str, detail: str
) -> None:
    entry = TimelineEntry(
        order_no,
        deps.clock(),
        OPERATOR_ACTION,
        method=action.name,
        outcome=outcome,
        actor=operator,
        detail=detail,
    )
    await write_apart(deps.uow, entry)  # an operator's action must be on record: a failure raises
