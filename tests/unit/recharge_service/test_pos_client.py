"""The POS client against a recharge center played by the test over a ``grpc_testing`` channel.

The client runs in a worker thread; the test takes each call it makes (``take_unary_unary``),
checks the request and answers it (``rpc.terminate``). A client that makes one call too many stays
blocked in it, so a client that returns has made exactly the calls the test answered.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
import grpc_testing
import pytest

from protos.recharge.v1 import recharge_pb2
from rc_common.errors import InvalidArgument, NotFound, Refused, ServiceError, Unavailable
from rc_common.grpc_status import to_status
from recharge_service.domain.order import OrderStatus
from recharge_service.pos_client import (
    Order,
    PosClient,
    TopUpFailed,
    TopUpRefused,
    TopUpUndecided,
)

T = TypeVar("T")

SERVICE = recharge_pb2.DESCRIPTOR.services_by_name["RechargeCenter"]
CREATE = SERVICE.methods_by_name["CreateRechargeOrder"]
GET = SERVICE.methods_by_name["GetRechargeOrder"]

CARD_NO = "8800000000000001"
KEY = "pos-0042-sale-7781"
OPENID = "o-customer"
ORDER_NO = "RC20261126000001"
ATTEMPTS = 3
BACKOFF_S = 0.5
WAIT_S = 5.0  # how long the test waits for the client to act; only reached when a test fails


def order_proto(status: OrderStatus, **fields: Any) -> recharge_pb2.RechargeOrder:
    return recharge_pb2.RechargeOrder(
        order_no=ORDER_NO,
        card_no=CARD_NO,
        channel=recharge_pb2.CHANNEL_POS,
        status=status.value,
        pay_amount_fen=100_000,
        bonus_fen=2_000,
        credit_amount_fen=102_000,
        prepay_id="wx-prepay-1",
        idempotency_key=KEY,
        **fields,
    )


class PlayedCenter:
    """The recharge center, played by the test; time is fake and moves only when the client sleeps."""

    def __init__(self) -> None:
        self.channel = grpc_testing.channel([SERVICE], grpc_testing.strict_real_time())
        self.pauses: list[float] = []
        self.now = 1000.0
        self.client = PosClient(
            self.channel,
            merchant_id="shop-a",
            deadline_s=2.0,
            attempts=ATTEMPTS,
            backoff_s=BACKOFF_S,
            sleep=self._sleep,
            clock=lambda: self.now,
        )
        self._pool = ThreadPoolExecutor(max_workers=1)

    def _sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def start(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        return self._pool.submit(call, *args, **kwargs)

    def take(self, method: Any) -> tuple[Any, Any, Any]:
        """The next call the client makes to ``method``; fails (rather than hangs) if none comes."""
        taken: queue.Queue[tuple[Any, Any, Any]] = queue.Queue()
        threading.Thread(target=lambda: taken.put(self.channel.take_unary_unary(method)), daemon=True).start()
        try:
            return taken.get(timeout=WAIT_S)
        except queue.Empty:
            pytest.fail(f"the client never called {method.name}")

    def answer(self, method: Any, reply: recharge_pb2.RechargeOrder) -> Any:
        """Take the next call to ``method``, answer it OK with ``reply``; return its request."""
        _, request, rpc = self.take(method)
        rpc.terminate(reply, (), grpc.StatusCode.OK, "")
        return request

    def fail(self, method: Any, code: grpc.StatusCode, error: ServiceError | None = None) -> Any:
        """Take the next call, end it with ``code`` (with the server's status details for
        ``error``, built the way the servicers build them); return its request."""
        _, request, rpc = self.take(method)
        if error is None:
            rpc.terminate(recharge_pb2.RechargeOrder(), (), code, code.name.lower())
        else:
            status = to_status(error)
            assert status.code == code
            rpc.terminate(recharge_pb2.RechargeOrder(), status.trailing_metadata, code, status.details)
        return request

    def close(self) -> None:
        """Unblock a client still waiting in a call nobody answered (only after a failed test)."""
        for method in (CREATE, GET):

            def refuse_forever(method: Any = method) -> None:
                while True:
                    _, _, rpc = self.channel.take_unary_unary(method)
                    rpc.terminate(recharge_pb2.RechargeOrder(), (), grpc.StatusCode.NOT_FOUND, "over")

            threading.Thread(target=refuse_forever, daemon=True).start()
        self._pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def center() -> Iterator[PlayedCenter]:
    played = PlayedCenter()
    yield played
    played.close()


def test_a_top_up_is_one_call_that_returns_the_order_awaiting_payment(center: PlayedCenter) -> None:
    topping_up = center.start(center.client.top_up, CARD_NO, 100_000, KEY, OPENID)

    request = center.answer(CREATE, order_proto(OrderStatus.AWAITING_PAYMENT))

    assert (request.card_no, request.pay_amount_fen, request.idempotency_key, request.payer_openid) == (
        CARD_NO,
        100_000,
        KEY,
        OPENID,
    )
    assert request.channel == recharge_pb2.CHANNEL_POS
    assert request.merchant_id == "shop-a"
    assert topping_up.result(timeout=WAIT_S) == Order(
        order_no=ORDER_NO,
        status=OrderStatus.AWAITING_PAYMENT,
        pay_amount_fen=100_000,
        bonus_fen=2_000,
        credit_amount_fen=102_000,
        prepay_id="wx-prepay-1",
        failure_reason="",
    )
    assert center.pauses == []


def test_a_retry_after_unavailable_sends_the_same_key_and_ends_with_one_order(
    center: PlayedCenter,
) -> None:
    topping_up = center.start(center.client.top_up, CARD_NO, 100_000, KEY, OPENID)

    first = center.fail(
        CREATE,
        grpc.StatusCode.UNAVAILABLE,
        Unavailable("PRE_RECHARGE_UNKNOWN", "card system did not answer", order_no=ORDER_NO),
    )
    second = center.answer(CREATE, order_proto(OrderStatus.AWAITING_PAYMENT))

    assert first.idempotency_key == second.idempotency_key == KEY
    assert second == first  # the very same request: same card, amount, channel, payer
    # The client returned after the second answer, so it made no third call (it would still be
    # blocked in it), and it paused exactly once between the two.
    assert topping_up.result(timeout=WAIT_S).order_no == ORDER_NO
    (pause,) = center.pauses
    assert BACKOFF_S / 2 <= pause <= BACKOFF_S  # one pause before the retry, half of it jitter


def test_a_refusal_with_an_error_info_reason_raises_top_up_refused_without_retrying(
    center: PlayedCenter,
) -> None:
    topping_up = center.start(center.client.top_up, CARD_NO, 100_000, KEY, OPENID)

    center.fail(
        CREATE,
        grpc.StatusCode.FAILED_PRECONDITION,
        Refused("CARD_FROZEN", "card 8800000000000001 is frozen", order_no=ORDER_NO),
    )

    with pytest.raises(TopUpRefused) as refused:
        topping_up.result(timeout=WAIT_S)
    assert refused.value.reason == "CARD_FROZEN"
    assert refused.value.message == "card 8800000000000001 is frozen"
    assert center.pauses == []  # refused at once: no pause, so no second call


def test_a_refusal_without_an_error_info_is_named_by_its_code(center: PlayedCenter) -> None:
    topping_up = center.start(center.client.top_up, CARD_NO, 0, KEY, OPENID)

    center.fail(
        CREATE,
        grpc.StatusCode.INVALID_ARGUMENT,
        InvalidArgument("pay_amount_fen", "must be greater than 0"),
    )

    with pytest.raises(TopUpRefused) as refused:
        topping_up.result(timeout=WAIT_S)
    assert refused.value.reason == "INVALID_ARGUMENT"
    assert "pay_amount_fen" in refused.value.message
    assert center.pauses == []


def test_unknown_after_every_attempt_raises_top_up_undecided_with_the_key(
    center: PlayedCenter,
) -> None:
    topping_up = center.start(center.client.top_up, CARD_NO, 100_000, KEY, OPENID)

    requests = [
        center.fail(CREATE, grpc.StatusCode.UNAVAILABLE),
        center.fail(CREATE, grpc.StatusCode.DEADLINE_EXCEEDED),
        center.fail(CREATE, grpc.StatusCode.INTERNAL),
    ]

    with pytest.raises(TopUpUndecided) as undecided:
        topping_up.result(timeout=WAIT_S)
    assert undecided.value.idempotency_key == KEY
    assert KEY in str(undecided.value)
    assert [r.idempotency_key for r in requests] == [KEY] * ATTEMPTS
    first, second = center.pauses  # ATTEMPTS calls; the backoff doubles, half of it jitter
    assert BACKOFF_S / 2 <= first <= BACKOFF_S and BACKOFF_S <= second <= 2 * BACKOFF_S


def test_wait_for_credit_returns_the_credited_order_after_a_paid_answer(
    center: PlayedCenter,
) -> None:
    waiting = center.start(center.client.wait_for_credit, ORDER_NO, timeout_s=10, poll_s=0.2)

    first = center.answer(GET, order_proto(OrderStatus.PAID))
    assert (first.merchant_id, first.order_no) == ("shop-a", ORDER_NO)
    second = center.answer(GET, order_proto(OrderStatus.CREDITED))

    assert first.order_no == second.order_no == ORDER_NO
    credited = waiting.result(timeout=WAIT_S)
    assert (credited.status, credited.credit_amount_fen) == (OrderStatus.CREDITED, 102_000)
    assert center.pauses == [0.2]


def test_wait_for_credit_looks_again_after_an_undecided_answer(center: PlayedCenter) -> None:
    waiting = center.start(center.client.wait_for_credit, ORDER_NO, timeout_s=10, poll_s=0.2)

    center.fail(GET, grpc.StatusCode.UNAVAILABLE)
    center.answer(GET, order_proto(OrderStatus.CREDITED))

    assert waiting.result(timeout=WAIT_S).status is OrderStatus.CREDITED


@pytest.mark.parametrize(
    "ended", [OrderStatus.REFUNDED, OrderStatus.CLOSED, OrderStatus.REJECTED], ids=lambda s: s.name
)
def test_wait_for_credit_raises_top_up_failed_when_the_order_ends_without_credit(
    center: PlayedCenter, ended: OrderStatus
) -> None:
    waiting = center.start(center.client.wait_for_credit, ORDER_NO, timeout_s=10, poll_s=0.2)

    center.answer(GET, order_proto(OrderStatus.PAID))
    center.answer(GET, order_proto(ended, failure_reason="CARD_FROZEN"))

    with pytest.raises(TopUpFailed) as failed:
        waiting.result(timeout=WAIT_S)
    assert (failed.value.status, failed.value.order_no, failed.value.failure_reason) == (
        ended,
        ORDER_NO,
        "CARD_FROZEN",
    )


def test_wait_for_credit_gives_up_undecided_at_the_timeout(center: PlayedCenter) -> None:
    waiting = center.start(center.client.wait_for_credit, ORDER_NO, timeout_s=1.0, poll_s=0.4)

    # Looks at 0.0, 0.4 and 0.8 s; a fourth would come at 1.2 s, after the timeout.
    for _ in range(3):
        center.answer(GET, order_proto(OrderStatus.CREDIT_UNKNOWN))

    with pytest.raises(TopUpUndecided) as undecided:
        waiting.result(timeout=WAIT_S)
    assert (undecided.value.order_no, undecided.value.last_status) == (
        ORDER_NO,
        OrderStatus.CREDIT_UNKNOWN,
    )
    assert center.pauses == [0.4, 0.4]


def test_wait_for_credit_refuses_an_unknown_order_number(center: PlayedCenter) -> None:
    waiting = center.start(center.client.wait_for_credit, "RC-NOPE", timeout_s=10, poll_s=0.2)

    center.fail(GET, grpc.StatusCode.NOT_FOUND, NotFound("order RC-NOPE not found"))

    with pytest.raises(TopUpRefused) as refused:
        waiting.result(timeout=WAIT_S)
    assert refused.value.reason == "NOT_FOUND"
    assert center.pauses == []
