"""A synchronous helper for POS gateways: top up a card, then wait for the credit.

What a POS gateway does at the counter, over the generated ``RechargeCenter`` stub:

1. ``top_up`` asks for a recharge order (channel POS) under an idempotency key the gateway chose
   for this sale, and gets back the order (its prepay id becomes the QR code the customer pays).
   An answer that decides nothing (UNAVAILABLE, a missed deadline ...) is asked again with THE
   SAME key, so however often we ask, the sale has at most one order.
2. ``wait_for_credit`` looks at the order after the customer paid until the card is credited or
   the order ends another way.

What a caller sees (the error tree)::

    PosError
    ├── TopUpRefused(reason, message)   a definitive "no" (card frozen, amount above the maximum,
    │                                   a bad field, unknown order ...); asking again won't help
    ├── TopUpFailed(status, order_no)   the order ended without a credit: REFUNDED (the payment
    │                                   went back), CLOSED (never paid) or REJECTED
    └── TopUpUndecided(idempotency_key  not decided yet: call ``top_up`` again later with the SAME
                       | order_no)      key, or ``wait_for_credit`` again; never a new key

Which status codes are a refusal and which prove nothing is decided in one place,
``rc_common.outcomes`` (DEADLINE_EXCEEDED, UNAVAILABLE, CANCELLED, INTERNAL, UNKNOWN and anything
unexpected are *unknown*, never a failure). Synchronous on purpose (POS gateways are often plain
threads); nothing runs at import, every duration is a parameter, and ``sleep``/``clock`` are seams
for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.clock import backoff
from rc_common.grpc_status import error_reason
from rc_common.outcomes import REFUSAL_CODES
from recharge_service.domain.order import OrderStatus

#: The order ended without a credit; looking again will not change that.
ENDED_WITHOUT_CREDIT = frozenset({OrderStatus.REFUNDED, OrderStatus.CLOSED, OrderStatus.REJECTED})


@dataclass(frozen=True)
class Order:
    """What a POS needs to know about a recharge order."""

    order_no: str
    status: OrderStatus
    #: What the customer pays.
    pay_amount_fen: int
    #: Added by the card's promotion rules, on top of the payment.
    bonus_fen: int
    #: What lands on the card once credited: pay amount + bonus.
    credit_amount_fen: int
    #: WeChat's prepay id; the POS shows it as a QR code for the customer to pay.
    prepay_id: str
    #: Why the order ended without a credit ('' otherwise).
    failure_reason: str

    @classmethod
    def from_proto(cls, order: recharge_pb2.RechargeOrder) -> Order:
        return cls(
            order_no=order.order_no,
            status=OrderStatus(order.status),
            pay_amount_fen=order.pay_amount_fen,
            bonus_fen=order.bonus_fen,
            credit_amount_fen=order.credit_amount_fen,
            prepay_id=order.prepay_id,
            failure_reason=order.failure_reason,
        )


class PosError(Exception):
    """Base of every answer of ``PosClient`` that is not a credited order."""


class TopUpRefused(PosError):
    """The recharge center said a definitive no; ``reason`` is its ErrorInfo reason or the code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
        self.message = message


class TopUpFailed(PosError):
    """The order ended without a credit (REFUNDED, CLOSED or REJECTED)."""

    def __init__(self, status: OrderStatus, order_no: str, failure_reason: str = "") -> None:
        super().__init__(f"order {order_no} ended {status.name} {failure_reason}".rstrip())
        self.status = status
        self.order_no = order_no
        self.failure_reason = failure_reason


class TopUpUndecided(PosError):
    """Not decided yet. Ask again later with the same idempotency key, or wait for the order again.

    ``idempotency_key`` is set when the order could not be created or found out (``top_up``);
    ``order_no`` and ``last_status`` when the order exists but has not ended (``wait_for_credit``).
    """

    def __init__(
        self,
        idempotency_key: str = "",
        *,
        order_no: str = "",
        last_status: OrderStatus | None = None,
    ) -> None:
        if order_no:
            seen = last_status.name if last_status is not None else "no answer"
            text = f"order {order_no} not credited yet (last seen: {seen}); wait for it again later"
        else:
            text = f"top-up not decided yet; call top_up again later with the same key {idempotency_key!r}"
        super().__init__(text)
        self.idempotency_key = idempotency_key
        self.order_no = order_no
        self.last_status = last_status


class PosClient:
    """Tops up cards at a POS through the recharge center, synchronously.

    ``channel``: a ``grpc.Channel`` to the recharge center (the caller owns and closes it).
    ``merchant_id``: the merchant this POS sells for (every request names it; its cards only).
    ``deadline_s``: deadline of each call. ``attempts``: calls per ``top_up`` before giving up
    undecided (at least 1). ``backoff_s``: pause after the first undecided answer, doubled after
    each further one up to ``backoff_max_s``, with jitter (``rc_common.clock.backoff``). ``sleep``
    and ``clock``: how to pause and read monotonic time (tests pass fakes).
    """

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        merchant_id: str,
        deadline_s: float,
        attempts: int,
        backoff_s: float,
        backoff_max_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not merchant_id:
            raise ValueError("merchant_id is required")
        self._center = recharge_pb2_grpc.RechargeCenterStub(channel)
        self._merchant_id = merchant_id
        self._deadline_s = deadline_s
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._clock = clock

    def top_up(self, card_no: str, pay_amount_fen: int, idempotency_key: str, payer_openid: str) -> Order:
        """Create the POS order for this sale (or get back the one this key already created).

        Returns the order awaiting payment. Raises ``TopUpRefused`` at the first definitive no
        (never retried) and ``TopUpUndecided`` when every attempt ended undecided. Every attempt
        sends the same idempotency key, so retries can never create a second order.
        """
        request = recharge_pb2.CreateRechargeOrderRequest(
            merchant_id=self._merchant_id,
            card_no=card_no,
            pay_amount_fen=pay_amount_fen,
            channel=recharge_pb2.CHANNEL_POS,
            idempotency_key=idempotency_key,
            payer_openid=payer_openid,
        )
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                self._sleep(backoff(attempt - 1, self._backoff_s, self._backoff_max_s))
            try:
                reply = self._center.CreateRechargeOrder(request, timeout=self._deadline_s)
            except grpc.RpcError as error:
                _raise_if_refused(error)
                continue
            return Order.from_proto(reply)
        raise TopUpUndecided(idempotency_key)

    def wait_for_credit(self, order_no: str, *, timeout_s: float, poll_s: float) -> Order:
        """Look at the order every ``poll_s`` until the card is credited; return it credited.

        Raises ``TopUpFailed`` when the order ends without a credit, ``TopUpRefused`` on a
        definitive no (an unknown order number), and ``TopUpUndecided`` when the next look would
        come after ``timeout_s`` (an order in MANUAL_REVIEW waits for an operator, so it ends this
        way too). Undecided answers to a look are simply looked at again.
        """
        give_up_at = self._clock() + timeout_s
        request = recharge_pb2.GetRechargeOrderRequest(merchant_id=self._merchant_id, order_no=order_no)
        last_status: OrderStatus | None = None
        while True:
            try:
                reply = self._center.GetRechargeOrder(request, timeout=self._deadline_s)
            except grpc.RpcError as error:
                _raise_if_refused(error)
            else:
                order = Order.from_proto(reply)
                if order.status is OrderStatus.CREDITED:
                    return order
                if order.status in ENDED_WITHOUT_CREDIT:
                    raise TopUpFailed(order.status, order.order_no, order.failure_reason)
                last_status = order.status
            if self._clock() + poll_s >= give_up_at:
                raise TopUpUndecided(order_no=order_no, last_status=last_status)
            self._sleep(poll_s)


def _raise_if_refused(error: grpc.RpcError) -> None:
    """Raise ``TopUpRefused`` for a definitive answer; return for an undecided one."""
    code = error.code() if isinstance(error, grpc.Call) else None
    if code is None or code not in REFUSAL_CODES:
        return
    # The server packs its reason as a google.rpc.ErrorInfo in grpc-status-details-bin
    # (rc_common.grpc_status); without one, the code name is the reason.
    reason = error_reason(error) or code.name
    raise TopUpRefused(reason, error.details() or "") from error
