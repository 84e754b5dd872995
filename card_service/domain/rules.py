"""Recharge rules: each merchant's versioned bonus tiers and the limits its top-ups must respect.

Every merchant runs its own card program, so each has its own rule history (versions 1, 2, ...);
a merchant that never set one tops up under version 0: no bonus and the server's default limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rc_common.errors import InvalidArgument, Refused


@dataclass(frozen=True)
class BonusTier:
    """Pay at least ``min_pay_fen`` and get ``bonus_fen``."""

    min_pay_fen: int
    bonus_fen: int


@dataclass(frozen=True)
class Limits:
    """Per top-up minimum and maximum pay amount, and the cap on balance plus pending credits.

    In a stored rule 0 means "the server's default"; ``filled`` resolves that.
    """

    min_pay_fen: int = 0
    max_pay_fen: int = 0
    balance_cap_fen: int = 0

    def filled(self, defaults: Limits) -> Limits:
        return Limits(
            self.min_pay_fen or defaults.min_pay_fen,
            self.max_pay_fen or defaults.max_pay_fen,
            self.balance_cap_fen or defaults.balance_cap_fen,
        )

    def check_top_up(self, pay_amount_fen: int, credit_fen: int, balance_fen: int, pending_fen: int) -> None:
        """Refuses a top-up outside these (filled) limits."""
        if pay_amount_fen < self.min_pay_fen:
            raise Refused("AMOUNT_BELOW_MINIMUM", f"pay amount must be at least {self.min_pay_fen} fen",
                          min_pay_fen=str(self.min_pay_fen))
        if pay_amount_fen > self.max_pay_fen:
            raise Refused("AMOUNT_ABOVE_MAXIMUM", f"pay amount must be at most {self.max_pay_fen} fen",
                          max_pay_fen=str(self.max_pay_fen))
        if balance_fen + pending_fen + credit_fen > self.balance_cap_fen:
            raise Refused(
                "BALANCE_CAP_EXCEEDED",
                f"balance {balance_fen} + pending {pending_fen} + credit {credit_fen} fen "
                f"exceeds the cap of {self.balance_cap_fen}",
                balance_cap_fen=str(self.balance_cap_fen),
            )


@dataclass(frozen=True)
class RechargeRule:
    """One version of a merchant's rule; a new version is created for every change, never edited."""

    merchant_id: str
    #: Counted per merchant. 0 is the implicit rule in force before the merchant set any: no
    #: bonus, default limits.
    version: int
    tiers: tuple[BonusTier, ...] = ()
    limits: Limits = field(default_factory=Limits)
    created_at: datetime | None = None

    def bonus_for(self, pay_amount_fen: int) -> int:
        """The bonus of the highest tier whose threshold the pay amount reaches (0 if none)."""
        reached = [tier for tier in self.tiers if tier.min_pay_fen <= pay_amount_fen]
        return max(reached, key=lambda tier: tier.min_pay_fen).bonus_fen if reached else 0

    def next_version(self, tiers: Sequence[BonusTier], limits: Limits, now: datetime) -> RechargeRule:
        validate_rule(tiers, limits)
        ordered = tuple(sorted(tiers, key=lambda tier: tier.min_pay_fen))
        return RechargeRule(self.merchant_id, self.version + 1, ordered, limits, now)


def validate_rule(tiers: Sequence[BonusTier], limits: Limits) -> None:
    seen: set[int] = set()
    for index, tier in enumerate(tiers):
        if tier.min_pay_fen <= 0:
            raise InvalidArgument(f"tiers[{index}].min_pay_fen", "must be positive")
        if tier.bonus_fen < 0:
            raise InvalidArgument(f"tiers[{index}].bonus_fen", "must not be negative")
        if tier.min_pay_fen in seen:
            raise InvalidArgument(f"tiers[{index}].min_pay_fen", f"duplicate threshold {tier.min_pay_fen}")
        seen.add(tier.min_pay_fen)
    for name in ("min_pay_fen", "max_pay_fen", "balance_cap_fen"):
        if getattr(limits, name) < 0:
            raise InvalidArgument(name, "must not be negative (0 means the server's default)")
    if limits.min_pay_fen and limits.max_pay_fen and limits.min_pay_fen > limits.max_pay_fen:
        raise InvalidArgument("min_pay_fen", "must not exceed max_pay_fen")
