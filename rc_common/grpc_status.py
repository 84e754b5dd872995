"""The one table from ``errors`` to gRPC status codes, with rich details (ErrorInfo, BadRequest)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from rc_common.errors import (
    Exhausted,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Refused,
    ServiceError,
    Unavailable,
)
from rc_common.logs import get_logger
from rc_common.validation import check_request

ERROR_DOMAIN = "recharge-center.example"

_log = get_logger("grpc")

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]


def to_status(exc: ServiceError) -> grpc.Status:
    """Build the rich gRPC status for a service error."""
    detail = any_pb2.Any()
    if isinstance(exc, InvalidArgument):
        code = code_pb2.INVALID_ARGUMENT
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=exc.field, description=exc.message
                    )
                ]
            )
        )
    elif isinstance(exc, NotFound):
        code = code_pb2.NOT_FOUND
        detail.Pack(error_details_pb2.ErrorInfo(reason="NOT_FOUND", domain=ERROR_DOMAIN))
    elif isinstance(exc, Refused | PermissionDenied):
        code = code_pb2.FAILED_PRECONDITION if isinstance(exc, Refused) else code_pb2.PERMISSION_DENIED
        detail.Pack(
            error_details_pb2.ErrorInfo(
                reason=exc.reason, domain=ERROR_DOMAIN, metadata=exc.metadata
            )
        )
    elif isinstance(exc, Unavailable | Exhausted):
        code = code_pb2.UNAVAILABLE if isinstance(exc, Unavailable) else code_pb2.RESOURCE_EXHAUSTED
        detail.Pack(
            error_details_pb2.ErrorInfo(
                reason=exc.reason, domain=ERROR_DOMAIN, metadata=exc.metadata
            )
        )
    else:
        code = code_pb2.INTERNAL
        detail.Pack(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN))
    return rpc_status.to_status(status_pb2.Status(code=code, message=exc.message, details=[detail]))


async def abort_with(context: grpc.aio.ServicerContext, exc: ServiceError) -> None:
    status = to_status(exc)
    await context.abort(status.code, status.details, status.trailing_metadata)


#: What a caller reads when a handler failed in a way nobody planned for (the traceback is in
#: the server's log, never in the answer: no exception class name, no SQL).
INTERNAL_MESSAGE = "internal error; the server logged the details"


def maps_errors(method: Handler[Req, Resp]) -> Handler[Req, Resp]:
    """Servicer-method decorator: the request passes ``validation.check_request`` (no NUL, no
    string beyond its field's limit), then a raised ``ServiceError`` becomes its gRPC status; anything
    unexpected becomes INTERNAL with reason ``INTERNAL`` and a generic message (a last resort,
    logged with its traceback: each such case is a bug to fix, and the fuzz suite fails on it)."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            check_request(request)
            return await method(self, request, context)
        except ServiceError as exc:
            await abort_with(context, exc)
            raise AssertionError("unreachable: abort raises") from exc
        except grpc.aio.AbortError:  # the handler answered a status of its own
            raise
        except Exception as exc:
            _log.exception("handler_failed", method=method.__name__)
            await abort_with(context, ServiceError(INTERNAL_MESSAGE))
            raise AssertionError("unreachable: abort raises") from exc

    return wrapper


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo carried by a failed call (reason and metadata), or None."""
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                return info
    return None


def error_reason(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason carried by a failed call, or '' when there is none."""
    info = error_info(error)
    return str(info.reason) if info is not None else ""


def error_field(error: grpc.aio.AioRpcError) -> str:
    """The first field named by a BadRequest detail, or ''."""
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad) and bad.field_violations:
                return str(bad.field_violations[0].field)
    return ""
