"""Pre-recharges (预充值) and their state machine.

A pre-recharge fixes, before the customer pays, what a top-up will credit (pay amount plus the
bonus of the rule in force then) and records it RECHARGING. Only ``confirm`` or ``void`` move it
on, and each does so at most once: the two terminal states exclude each other forever.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from card_service.domain.transitions import IllegalTransition
from rc_common.errors import Refused


class PreRechargeStatus(enum.Enum):
    #: Recorded and fenced against the card's limits, not credited yet. Only confirm or void
    #: move it; nothing expires it silently.
    RECHARGING = "RECHARGING"
    #: Credited: the principal and bonus journal entries were written with this change.
    SUCCEEDED = "SUCCEEDED"
    #: Fenced: it can never be credited. The caller may refund the customer.
    VOIDED = "VOIDED"


TRANSITIONS: Mapping[PreRechargeStatus, frozenset[PreRechargeStatus]] = {
    PreRechargeStatus.RECHARGING: frozenset({PreRechargeStatus.SUCCEEDED, PreRechargeStatus.VOIDED}),
    PreRechargeStatus.SUCCEEDED: frozenset(),
    PreRechargeStatus.VOIDED: frozenset(),
}


def guard(source: PreRechargeStatus, target: PreRechargeStatus) -> None:
    """Raises ``IllegalTransition`` unless the table allows ``source -> target``."""
    if target not in TRANSITIONS[source]:
        raise IllegalTransition("pre_recharge", source.name, target.name)


@dataclass
class PreRecharge:
    order_no: str
    #: Empty for a tombstone.
    card_no: str
    #: The card's merchant, whose rule gave the bonus; on a tombstone the merchant the void named
    #: ('' if none).
    merchant_id: str
    status: PreRechargeStatus
    pay_amount_fen: int
    bonus_fen: int
    #: The version of the merchant's recharge rule the bonus was computed with (0: no rule set).
    rule_version: int
    created_at: datetime
    updated_at: datetime
    void_reason: str = ""
    #: VOIDED before any pre-recharge arrived: it refuses a late one.
    tombstone: bool = False
    #: Optimistic concurrency: bumped on every stored change.
    version: int = 0

    @classmethod
    def start(
        cls, order_no: str, card_no: str, merchant_id: str, pay_amount_fen: int, bonus_fen: int,
        rule_version: int, now: datetime,
    ) -> PreRecharge:
        return cls(
            order_no, card_no, merchant_id, PreRechargeStatus.RECHARGING, pay_amount_fen, bonus_fen,
            rule_version, now, now,
        )

    @classmethod
    def tombstone_for(cls, order_no: str, merchant_id: str, reason: str, now: datetime) -> PreRecharge:
        return cls(
            order_no, "", merchant_id, PreRechargeStatus.VOIDED, 0, 0, 0, now, now,
            void_reason=reason, tombstone=True,
        )

    @property
    def credit_amount_fen(self) -> int:
        return self.pay_amount_fen + self.bonus_fen

    @property
    def is_terminal(self) -> bool:
        return not TRANSITIONS[self.status]

    def visible_to(self, merchant_id: str) -> bool:
        """Whether a request naming ``merchant_id`` may see this record: '' sees every record, and
        every request sees a tombstone that named no merchant; to any other merchant it does not
        exist."""
        return not merchant_id or self.merchant_id in ("", merchant_id)

    def same_request(self, card_no: str, pay_amount_fen: int, merchant_id: str) -> bool:
        return not self.tombstone and (self.card_no, self.pay_amount_fen, self.merchant_id) == (
            card_no, pay_amount_fen, merchant_id
        )

    def check_replay(self, card_no: str, pay_amount_fen: int, merchant_id: str) -> None:
        """For a pre-recharge whose order number is taken: passes for a faithful replay (same
        card, pay amount and merchant). A tombstone refuses every one, whichever merchant asks."""
        if self.tombstone:
            raise Refused("RECHARGE_VOIDED", f"order {self.order_no} was voided before it arrived",
                          order_no=self.order_no)
        if self.same_request(card_no, pay_amount_fen, merchant_id):
            return
        if self.status is PreRechargeStatus.VOIDED:
            raise Refused("RECHARGE_VOIDED", f"order {self.order_no} was voided", order_no=self.order_no)
        raise Refused(
            "ORDER_NO_CONFLICT",
            f"order {self.order_no} was pre-recharged with other parameters",
            order_no=self.order_no,
        )

    def confirm(self, now: datetime) -> None:
        self._move(PreRechargeStatus.SUCCEEDED, now)

    def void(self, reason: str, now: datetime) -> None:
        self._move(PreRechargeStatus.VOIDED, now)
        self.void_reason = reason

    def _move(self, target: PreRechargeStatus, now: datetime) -> None:
        guard(self.status, target)
        self.status = target
        self.updated_at = now
