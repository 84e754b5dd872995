"""The error tree, drawn once. Pure Python: domains raise these, servicers map them.

Raised by our own services (mapped to a gRPC status by ``grpc_status.abort_with``)::

    ServiceError
    ├── InvalidArgument(field)      -> INVALID_ARGUMENT   bad input, names the field
    ├── NotFound(what)              -> NOT_FOUND          unknown id
    ├── Refused(reason)             -> FAILED_PRECONDITION + google.rpc.ErrorInfo(reason)
    │                                  a definitive business "no"; nothing was changed
    ├── PermissionDenied(reason)    -> PERMISSION_DENIED + ErrorInfo(reason): this caller may not,
    │                                  whoever the policy table lets in (SAME_OPERATOR: four eyes)
    ├── Unavailable(reason)         -> UNAVAILABLE + ErrorInfo(reason): not decided yet, retry
    │                                  with the same idempotency key (metadata says which order)
    └── Exhausted(reason)           -> RESOURCE_EXHAUSTED + ErrorInfo(reason): a limit was reached;
                                       nothing was written, retry later (metadata says when)

Seen by callers of another system (``outcomes.call`` turns an RPC's end into one of these)::

    RemoteOutcome
    ├── Done(value)                 the remote system did it and said so
    ├── Rejected(reason, code)      a definitive answer: it did not and will not do it
    └── Unknown(code, detail)       DEADLINE_EXCEEDED, UNAVAILABLE, CANCELLED, INTERNAL, UNKNOWN
                                    and anything unexpected: it may or may not have happened
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error our servers answer deliberately."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ServiceError):
    """Bad input; ``field`` is the request field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(ServiceError):
    """The named entity does not exist."""


class Refused(ServiceError):
    """A definitive business refusal with a machine-readable ``reason`` (UPPER_SNAKE)."""

    def __init__(self, reason: str, message: str, **metadata: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.metadata = metadata


class PermissionDenied(ServiceError):
    """The caller passed the policy table, but the business rule refuses this caller (``reason``):
    e.g. the operator who asked for an action approving it (four eyes). Nothing was changed."""

    def __init__(self, reason: str, message: str, **metadata: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.metadata = metadata


class Unavailable(ServiceError):
    """Outcome not decided yet (a dependency's answer is unknown); the caller retries the same key."""

    def __init__(self, reason: str, message: str, **metadata: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.metadata = metadata


class Exhausted(ServiceError):
    """A limit was reached (a rate, a quota); nothing was written and the caller may retry later."""

    def __init__(self, reason: str, message: str, **metadata: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.metadata = metadata
