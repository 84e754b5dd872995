"""Four eyes on refunds: above a threshold, one operator asks and another decides.

``FourEyes`` is the rule (``--four-eyes-refund-above``): a REFUND of an order whose pay amount is
above it waits for a second operator. ``request_approval`` records the request: one PENDING approval
per order and action (a repeat, by anyone, answers the one already pending), with an
``operator_action`` row ``approval_requested`` on the order's timeline, both in one transaction.
``list_approvals`` pages them for the console and the ops CLI. Deciding: ``approve.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rc_common.errors import InvalidArgument, Unavailable
from recharge_service.domain.approval import Approval, ApprovalStatus
from recharge_service.domain.merchant import check_merchant_id
from recharge_service.domain.numbers import money, new_approval_id
from recharge_service.domain.order import RechargeOrder
from recharge_service.domain.timeline import OPERATOR_ACTION, TimelineEntry
from recharge_service.service_layer import resolve_rules as rules
from recharge_service.service_layer.commands import ResolveAction
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.queries import page_size_of
from recharge_service.service_layer.storage import ApprovalPage, read_approval_page_token

#: ResolveAnomaly's outcome when the action waits for a second operator.
APPROVAL_REQUIRED = "APPROVAL_REQUIRED"
#: A request that keeps racing with decisions of the pending one gives up after this many rounds.
MAX_ROUNDS = 5


@dataclass(frozen=True)
class FourEyes:
    """``refund_above_fen``: a refund of an order paying more than this many fen waits for a second
    operator (0: every refund)."""

    refund_above_fen: int

    def needs_approval(self, action: ResolveAction, order: RechargeOrder) -> bool:
        """``action`` on ``order`` waits for a second operator: a REFUND above the threshold that
        the rules let run (a refusal, or nothing to do, is answered at once as without four eyes)
        and that decides a refund (an order with its refund number was voided and its refund
        decided already: asking WeChat again with that same number moves no new money)."""
        return (
            action is ResolveAction.REFUND
            and order.pay_amount_fen > self.refund_above_fen
            and not order.out_refund_no
            and rules.refund(order).runs
        )

    def describe(self) -> str:
        return f"four eyes: refunds above {money(self.refund_above_fen)} need a second operator"


async def request_approval(
    deps: Deps, order: RechargeOrder, action: str, requester: str, reason: str, four_eyes: FourEyes
) -> Approval:
    """The PENDING approval of ``action`` on ``order``: a new one asked by ``requester``, or the
    one already pending (whoever asked for it)."""
    for _ in range(MAX_ROUNDS):
        now = deps.clock()
        approval = Approval(
            new_approval_id(now), order.order_no, order.merchant_id, action, order.pay_amount_fen,
            requester, reason, now,
        )  # fmt: skip
        entry = TimelineEntry(
            order.order_no, now, OPERATOR_ACTION, method=action, outcome="approval_requested",
            actor=requester, detail=f"approval {approval.approval_id} ({four_eyes.describe()}): {reason}",
        )  # fmt: skip
        async with deps.uow() as uow:
            uow.approvals.add_if_absent(approval, entry)
            await uow.commit()
        async with deps.uow(readonly=True) as uow:
            found = await uow.approvals.get(approval.approval_id)  # ours, when it was inserted
            found = found or await uow.approvals.pending_for(order.order_no, action)
        if found is not None:
            return found
        # The approval pending a moment ago was decided in between: ask again.
    raise Unavailable("ORDER_BUSY", f"order {order.order_no}: its pending approval kept changing; try again")


def statuses_of(names: Sequence[str]) -> list[ApprovalStatus]:
    """The statuses asked for (empty: PENDING); INVALID_ARGUMENT naming ``statuses`` otherwise."""
    try:
        return [ApprovalStatus(name.strip().upper()) for name in names] or [ApprovalStatus.PENDING]
    except ValueError:
        known = ", ".join(s.value for s in ApprovalStatus)
        raise InvalidArgument("statuses", f"each must be one of {known}") from None


async def list_approvals(
    deps: Deps,
    *,
    statuses: Sequence[str] = (),
    merchant_id: str = "",
    page_size: int = 0,
    page_token: str = "",
) -> ApprovalPage:
    """Approvals in ``statuses`` (default PENDING), of ``merchant_id`` ("" = everyone's), newest
    request first."""
    wanted = statuses_of(statuses)
    if merchant_id:
        check_merchant_id(merchant_id)
    size = page_size_of(page_size)
    if page_token:
        try:
            read_approval_page_token(page_token)
        except ValueError:
            raise InvalidArgument("page.page_token", "not a token from a previous page") from None
    async with deps.uow(readonly=True) as uow:
        return await uow.approvals.page(
            statuses=wanted, merchant_id=merchant_id, page_size=size, page_token=page_token
        )
