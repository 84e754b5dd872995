"""The recharge order and its state machine. Pure Python: no database, no gRPC.

States, in business words (the numbers mirror ``recharge.v1.OrderStatus``):

- CREATED: we accepted the top-up request; the card system's pre-recharge may or may not exist
  yet, and no payment has been asked for.
- AWAITING_PAYMENT: the pre-recharge is recorded (bonus fixed) and WeChat holds a prepay order;
  the customer may pay until the order expires.
- PAID: WeChat told us the customer paid and we stored the payment; the card is not credited yet.
- CREDIT_UNKNOWN: an exception record: we asked the card system to credit and never learned the
  answer. Internally we assume the credit landed: no refund until the card system says otherwise.
- CREDITED: the card system credited pay amount + bonus. Final.
- REFUNDING: the card system fenced the pre-recharge (voided: it can never be credited) and we
  asked WeChat to refund with ``{order_no}-R1``; waiting for WeChat to finish.
- REFUNDED: WeChat returned the money. Final.
- CLOSED: never paid; the WeChat order was closed and the pre-recharge voided. Final.
- REJECTED: the card system refused the pre-recharge (card frozen, limits, ...). Final.
- MANUAL_REVIEW: nobody could decide automatically; an operator resolves it, only through the same
  fenced operations as the automatic path (never a shortcut around void-before-refund).

Orders only move forward through ``TRANSITIONS``, the one table of legal moves; the decisions below
(``credit``, ``start_refund``, ``accept_payment`` …) say what an answer of another system does in
each state, and take their source states from that table. REFUNDING is entered only through
``start_refund``, with the card system's VOIDED answer for this order as proof (I1 enforced by the
model). ``version`` implements optimistic concurrency.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from rc_common.transitions import IllegalTransition
from recharge_service.domain import events
from recharge_service.domain.answers import VoidProof, is_genuine
from recharge_service.domain.events import Event


class OrderStatus(enum.IntEnum):
    CREATED = 1
    AWAITING_PAYMENT = 2
    PAID = 3
    CREDIT_UNKNOWN = 4
    CREDITED = 5
    REFUNDING = 6
    REFUNDED = 7
    CLOSED = 8
    REJECTED = 9
    MANUAL_REVIEW = 10


class Channel(enum.IntEnum):
    """Where the top-up was placed (mirrors ``recharge.v1.Channel``)."""

    OFFICIAL_ACCOUNT = 1
    POS = 2
    THIRD_PARTY = 3


S = OrderStatus

#: Every legal move. Anything else raises ``IllegalTransition``.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    # A payment can only arrive for an order WeChat knows about (AWAITING_PAYMENT), never CREATED.
    S.CREATED: frozenset({S.AWAITING_PAYMENT, S.REJECTED, S.CLOSED, S.MANUAL_REVIEW}),
    S.AWAITING_PAYMENT: frozenset({S.PAID, S.CLOSED, S.MANUAL_REVIEW}),
    S.PAID: frozenset({S.CREDITED, S.CREDIT_UNKNOWN, S.REFUNDING, S.MANUAL_REVIEW}),
    S.CREDIT_UNKNOWN: frozenset({S.CREDITED, S.REFUNDING, S.MANUAL_REVIEW}),
    # REFUNDING -> CREDITED only when a void answered SUCCEEDED (the credit won the race).
    S.REFUNDING: frozenset({S.REFUNDED, S.CREDITED, S.MANUAL_REVIEW}),
    # Out of manual review only through fenced operator actions (same calls as the sentinel).
    S.MANUAL_REVIEW: frozenset({S.CREDITED, S.REFUNDING, S.REFUNDED, S.CLOSED}),
    S.CREDITED: frozenset(),
    S.REFUNDED: frozenset(),
    S.CLOSED: frozenset(),
    S.REJECTED: frozenset(),
}

#: States in which the order's story has ended.
FINAL = frozenset({S.CREDITED, S.REFUNDED, S.CLOSED, S.REJECTED})
#: Orders still waiting for the customer to pay (what a merchant's ``max_open_orders`` counts).
OPEN_STATUSES = frozenset({S.CREATED, S.AWAITING_PAYMENT})
#: States the sentinel moves forward (CREATED only once past its expiry). Not MANUAL_REVIEW: only
#: operators' fenced actions take an order out of review.
SENTINEL_STATES = frozenset({S.CREATED, S.AWAITING_PAYMENT, S.PAID, S.CREDIT_UNKNOWN, S.REFUNDING})
#: States in which nothing is decided yet (a visit that leaves an order here is an undecided one,
#: unless it is only waiting for the customer).
UNDECIDED = frozenset({S.CREATED, S.AWAITING_PAYMENT, S.PAID, S.CREDIT_UNKNOWN})
#: States a payment notification may find the order in without anything to do.
PAID_OR_LATER = frozenset({S.PAID, S.CREDIT_UNKNOWN, S.CREDITED, S.REFUNDING, S.REFUNDED})


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


class PaymentEffect(enum.Enum):
    """What a payment WeChat reports does to the order (``RechargeOrder.accept_payment``)."""

    #: AWAITING_PAYMENT -> PAID: credit next.
    PAID = "paid"
    #: Paid before the prepay was recorded (CREATED): an operator must look.
    REVIEW = "review"
    #: In MANUAL_REVIEW with no payment on record: now it is (the operator decides).
    NOTED = "noted"
    #: Already paid or further along: nothing changes.
    ALREADY = "duplicate"
    #: Closed or rejected, yet paid: nothing changes here, the log and reconciliation say it.
    ANOMALY = "anomaly"

    @property
    def changed(self) -> bool:
        return self in (PaymentEffect.PAID, PaymentEffect.REVIEW, PaymentEffect.NOTED)


@dataclass
class Change:
    """One state change not yet persisted (the repository writes it to the timeline)."""

    from_status: OrderStatus
    to_status: OrderStatus
    actor: str
    detail: str


@dataclass
class RechargeOrder:
    order_no: str
    idempotency_key: str
    card_no: str
    channel: Channel
    pay_amount_fen: int
    payer_openid: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    #: The merchant the order belongs to, and the version of its configuration the order keeps.
    merchant_id: str
    merchant_version: int
    status: OrderStatus = S.CREATED
    bonus_fen: int = 0
    credit_amount_fen: int = 0
    rule_version: int = 0
    prepay_id: str = ""
    transaction_id: str = ""
    out_refund_no: str = ""
    failure_reason: str = ""
    paid_at: datetime | None = None
    version: int = 0
    attempts: int = 0
    last_error: str = ""
    changes: list[Change] = field(default_factory=list, repr=False, compare=False)
    events: list[Event] = field(default_factory=list, repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @property
    def pre_recharge_recorded(self) -> bool:
        """True once the card system's pre-recharge answer (bonus, credit amount) is stored."""
        return self.credit_amount_fen > 0

    def same_request(self, card_no: str, pay_amount_fen: int, channel: Channel, payer_openid: str) -> bool:
        return (self.card_no, self.pay_amount_fen, self.channel, self.payer_openid) == (
            card_no,
            pay_amount_fen,
            channel,
            payer_openid,
        )

    def transition(
        self, target: OrderStatus, at: datetime, *, actor: str = "system", detail: str = ""
    ) -> None:
        """Move to ``target`` or raise ``IllegalTransition``; records the change and its event.
        Not to REFUNDING: only ``start_refund`` goes there, with its proof."""
        if target is S.REFUNDING:
            why = ": only with a VoidProof"
            raise IllegalTransition(f"order {self.order_no}", self.status.name, target.name, why)
        self._move(target, at, actor, detail)

    def _move(self, target: OrderStatus, at: datetime, actor: str, detail: str) -> None:
        if not can_transition(self.status, target):
            raise IllegalTransition(f"order {self.order_no}", self.status.name, target.name)
        self.changes.append(Change(self.status, target, actor, detail))
        self.status = target
        self.updated_at = at
        self.events.append(events.for_status(self.order_no, target, detail))

    def record_pre_recharge(self, bonus_fen: int, credit_amount_fen: int, rule_version: int) -> None:
        self.bonus_fen = bonus_fen
        self.credit_amount_fen = credit_amount_fen
        self.rule_version = rule_version

    def note_undecided(self, error: str) -> None:
        """One more processing visit ended without a decision (the sentinel counts these)."""
        self.attempts += 1
        self.last_error = error

    # -- what the other systems' answers do (each returns False when there is nothing to do) ----

    @property
    def may_refund(self) -> bool:
        """Paid, and in a state the refund path may start from (or is already in)."""
        return bool(self.transaction_id) and (
            self.status is S.REFUNDING or can_transition(self.status, S.REFUNDING)
        )

    def accept_payment(
        self, transaction_id: str, paid_at: datetime, at: datetime, actor: str
    ) -> PaymentEffect:
        """WeChat reports the customer paid (``transaction_id``)."""
        if self.status is S.AWAITING_PAYMENT:
            self._paid(transaction_id, paid_at)
            self._move(S.PAID, at, actor, f"paid, transaction {transaction_id}")
            return PaymentEffect.PAID
        if self.status is S.CREATED:
            self._paid(transaction_id, paid_at)
            self.failure_reason = "PAID_BEFORE_PREPAY_RECORDED"
            self._move(S.MANUAL_REVIEW, at, actor, "paid, but the prepay was never recorded")
            return PaymentEffect.REVIEW
        if self.status is S.MANUAL_REVIEW and not self.transaction_id:
            self._paid(transaction_id, paid_at)
            self.updated_at = at
            return PaymentEffect.NOTED
        if self.status in PAID_OR_LATER or self.status is S.MANUAL_REVIEW:
            return PaymentEffect.ALREADY
        return PaymentEffect.ANOMALY

    def _paid(self, transaction_id: str, paid_at: datetime) -> None:
        self.transaction_id = transaction_id
        self.paid_at = paid_at

    def credit(self, at: datetime, actor: str, detail: str) -> bool:
        """The card system says SUCCEEDED: CREDITED (also out of REFUNDING: the credit won)."""
        if not can_transition(self.status, S.CREDITED):
            return False
        self.failure_reason = ""  # a review's reason stays in the timeline, not on a credited order
        self._move(S.CREDITED, at, actor, detail)
        return True

    def credit_unknown(self, error: str, at: datetime, actor: str) -> bool:
        """The credit's outcome is unknown: an exception record (attempts, last error). No refund."""
        if self.status is S.PAID:
            self.note_undecided(error)
            self._move(S.CREDIT_UNKNOWN, at, actor, error)
            return True
        if self.status in (S.CREDIT_UNKNOWN, S.REFUNDING, S.MANUAL_REVIEW):
            self.note_undecided(error)
            return True
        return False

    def start_refund(
        self, proof: VoidProof, out_refund_no: str, reason: str, at: datetime, actor: str
    ) -> bool:
        """The card system voided the pre-recharge: REFUNDING with the refund number. Raises
        ``IllegalTransition`` without the void's own proof for this order (I1)."""
        if not is_genuine(proof, self.order_no):
            raise IllegalTransition(
                f"order {self.order_no}", self.status.name, S.REFUNDING.name, ": no VoidProof for this order"
            )
        if not can_transition(self.status, S.REFUNDING):
            return False
        self.out_refund_no = out_refund_no
        self.failure_reason = reason
        self._move(S.REFUNDING, at, actor, f"voided; refund {out_refund_no}")
        return True

    def refunded(self, at: datetime, actor: str, detail: str) -> bool:
        """WeChat returned the money: REFUNDED."""
        if not self.out_refund_no or not can_transition(self.status, S.REFUNDED):
            return False
        self._move(S.REFUNDED, at, actor, detail)
        return True

    def send_to_review(self, reason: str, at: datetime, actor: str) -> bool:
        if not can_transition(self.status, S.MANUAL_REVIEW):
            return False
        self.failure_reason = reason
        self._move(S.MANUAL_REVIEW, at, actor, reason)
        return True

    def close(self, at: datetime, actor: str, detail: str) -> bool:
        """Never paid: WeChat's order is closed (or never existed) and the pre-recharge voided."""
        if self.transaction_id or not can_transition(self.status, S.CLOSED):
            return False
        self._move(S.CLOSED, at, actor, detail)
        return True
