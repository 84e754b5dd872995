"""Three-valued outcomes of calls to other systems: done, definitely refused, or unknown.

Only explicit business answers are final. A timeout, a dropped connection or a server crash says
nothing about whether the remote side acted, so those codes are *unknown* — never a failure.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc

from rc_common.grpc_status import error_reason
from rc_common.metrics import observe_outgoing

T = TypeVar("T")

#: Codes that prove nothing about what the remote side did.
UNKNOWN_CODES = frozenset(
    {
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)
#: Codes that are a definitive answer: the remote side did not and will not act on this request.
REFUSAL_CODES = frozenset(
    {
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


@dataclass(frozen=True)
class Done(Generic[T]):
    value: T
    latency_ms: float
    outcome: str = "done"


@dataclass(frozen=True)
class Rejected:
    code: str
    reason: str
    detail: str
    latency_ms: float
    outcome: str = "refused"


@dataclass(frozen=True)
class Unknown:
    code: str
    detail: str
    latency_ms: float
    outcome: str = "unknown"


Outcome = Done[T] | Rejected | Unknown


class RemoteFailure(Exception):
    """Raised by a call that is not a gRPC one (an HTTP adapter) to end as ``outcome``: a refusal
    or an unknown outcome it classified itself; :func:`call` returns it with the call's latency."""

    def __init__(self, outcome: Rejected | Unknown) -> None:
        super().__init__(f"{outcome.code}: {outcome.detail}")
        self.outcome = outcome


def classify(error: grpc.aio.AioRpcError, latency_ms: float) -> Rejected | Unknown:
    code = error.code()
    name = code.name if code is not None else "UNKNOWN"
    if code in REFUSAL_CODES:
        return Rejected(name, error_reason(error) or name, error.details() or "", latency_ms)
    # Everything not explicitly a business answer (including RESOURCE_EXHAUSTED, ABORTED,
    # UNIMPLEMENTED) is treated as unknown: assume it may have happened.
    return Unknown(name, error.details() or "", latency_ms)


async def call(awaitable: Awaitable[T], *, method: str = "") -> Done[T] | Rejected | Unknown:
    """Await one RPC and return its three-valued outcome (never raises for RPC errors).
    ``method`` (``/package.Service/Method``): count it in ``rc_outgoing_calls_total`` by outcome."""
    outcome = await _call(awaitable)
    if method:
        observe_outgoing(method, outcome.outcome, outcome.latency_ms / 1000)
    return outcome


async def _call(awaitable: Awaitable[T]) -> Done[T] | Rejected | Unknown:
    started = time.perf_counter()
    try:
        value = await awaitable
    except grpc.aio.AioRpcError as error:
        return classify(error, (time.perf_counter() - started) * 1000)
    except RemoteFailure as failure:
        latency_ms = (time.perf_counter() - started) * 1000
        if isinstance(failure.outcome, Rejected):
            found = failure.outcome
            return Rejected(found.code, found.reason, found.detail, latency_ms)
        return Unknown(failure.outcome.code, failure.outcome.detail, latency_ms)
    except TimeoutError:
        return Unknown("DEADLINE_EXCEEDED", "client timeout", (time.perf_counter() - started) * 1000)
    return Done(value, (time.perf_counter() - started) * 1000)
