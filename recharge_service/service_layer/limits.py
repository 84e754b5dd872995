"""Limits on new orders: a merchant's burst cannot starve the others, and nobody can block
someone else's card.

Every limit is checked only when a *new* order would be written (a replay of an existing
idempotency key is never limited: it returns the recorded order). Two come from the merchant's
configuration:

* ``max_open_orders``: the merchant's orders still waiting for payment (CREATED,
  AWAITING_PAYMENT). Counted by a read just before the insert: concurrent creates of one merchant
  may overshoot it by the number in flight at that moment — it protects the shared service from a
  flood, it is not a quota on money.
* ``max_create_rate``: new orders per second, as a token bucket holding at most twice that (a burst
  of two seconds' worth). Each process keeps its own buckets: with N replicas behind a balancer a
  merchant gets up to N times the rate.

Two are the service's settings (``--max-open-orders-per-card``, ``--max-open-orders-per-payer``),
because every unpaid order holds a pre-recharge that counts against its card's balance cap on the
card system until it is voided — strangers' unpaid orders could otherwise fill a card's headroom
and refuse the owner's own top-up:

* ``per_card``: a card holds at most this many unpaid orders; beyond it, only a payer with none open
  on the card may add one. A stranger (one openid) can hold at most ``per_card`` of them, and the
  owner's own first top-up is never refused by the count of other people's orders.
* ``per_payer``: one openid holds at most this many unpaid orders within a merchant, over all cards.

Both are counted by one read just before the insert (concurrent creates may overshoot by the number
in flight, which admission control bounds); unpaid orders are closed and their pre-recharges voided
at expiry (the sentinel, not one hold window later), so what a cap holds back is released in time.

Every refusal is ``Exhausted`` (RESOURCE_EXHAUSTED) with a reason code naming the limit: nothing
was written, the caller retries later with the same key. For the caller that is an *unknown*
outcome, which is safe — the order does not exist yet.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rc_common.errors import Exhausted
from recharge_service.domain.merchant import MerchantConfig
from recharge_service.settings import LimitSettings

#: A bucket holds this many seconds' worth of tokens (the burst a quiet merchant may send at once).
BURST_SECONDS = 2.0


@dataclass
class _Bucket:
    rate: float
    tokens: float
    at: float


@dataclass
class CreateRates:
    """Token buckets, one per merchant, refilled at its ``max_create_rate``."""

    monotonic: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, merchant: MerchantConfig) -> float:
        """Take a token for a new order of ``merchant``: 0.0 when taken, else the seconds until
        one is due (nothing taken). A merchant without a rate limit always gets one."""
        rate = float(merchant.max_create_rate)
        if rate <= 0:
            self._buckets.pop(merchant.merchant_id, None)
            return 0.0
        now = self.monotonic()
        capacity = rate * BURST_SECONDS
        bucket = self._buckets.get(merchant.merchant_id)
        if bucket is None:
            bucket = self._buckets[merchant.merchant_id] = _Bucket(rate, capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.at) * rate)
        bucket.rate, bucket.at = rate, now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate


def check_rate(rates: CreateRates, merchant: MerchantConfig) -> None:
    """``Exhausted`` (MERCHANT_RATE_LIMITED, with ``retry_after_ms``) when the merchant's rate of
    new orders is used up."""
    wait = rates.take(merchant)
    if wait > 0:
        raise Exhausted(
            "MERCHANT_RATE_LIMITED",
            f"merchant {merchant.merchant_id} creates at most {merchant.max_create_rate} orders per "
            "second; retry later with the same key",
            merchant_id=merchant.merchant_id,
            retry_after_ms=str(max(1, math.ceil(wait * 1000))),
        )


@dataclass(frozen=True)
class OpenOrderCaps:
    """The service's caps on unpaid orders (0 = no cap); see the module's doc."""

    per_card: int
    per_payer: int

    @classmethod
    def from_settings(cls, settings: LimitSettings) -> OpenOrderCaps:
        """The caps of ``--max-open-orders-per-card`` and ``--max-open-orders-per-payer``."""
        return cls(settings.max_open_orders_per_card, settings.max_open_orders_per_payer)


@dataclass(frozen=True)
class OpenOrders:
    """A merchant's unpaid orders on one card, of one payer on that card, and of that payer."""

    on_card: int
    payer_on_card: int
    of_payer: int


def check_open_for(caps: OpenOrderCaps, card_no: str, open_orders: OpenOrders) -> None:
    """``Exhausted`` (CARD_OPEN_ORDERS_LIMIT or PAYER_OPEN_ORDERS_LIMIT) when a new unpaid order
    would pass a cap."""
    if caps.per_card and open_orders.on_card >= caps.per_card and open_orders.payer_on_card > 0:
        raise Exhausted(
            "CARD_OPEN_ORDERS_LIMIT",
            f"card {card_no} has {open_orders.on_card} orders waiting for payment, "
            f"{open_orders.payer_on_card} of them yours; the limit is {caps.per_card}: pay or let one "
            "expire, then retry",
            card_no=card_no,
        )
    if caps.per_payer and open_orders.of_payer >= caps.per_payer:
        raise Exhausted(
            "PAYER_OPEN_ORDERS_LIMIT",
            f"this payer has {open_orders.of_payer} orders waiting for payment, the limit is "
            f"{caps.per_payer}: pay or let one expire, then retry",
        )


def check_open_orders(merchant: MerchantConfig, open_orders: int) -> None:
    """``Exhausted`` (MERCHANT_OPEN_ORDERS_LIMIT) when the merchant already has its maximum of
    orders waiting for payment."""
    if merchant.max_open_orders and open_orders >= merchant.max_open_orders:
        raise Exhausted(
            "MERCHANT_OPEN_ORDERS_LIMIT",
            f"merchant {merchant.merchant_id} has {open_orders} orders waiting for payment, its "
            f"limit is {merchant.max_open_orders}; retry once some are paid or expired",
            merchant_id=merchant.merchant_id,
        )
