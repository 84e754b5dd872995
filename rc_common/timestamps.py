"""``google.protobuf.Timestamp`` from a datetime, shared by the services' message mappers."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """As ``Timestamp.FromDatetime`` (a naive time is UTC), in integer arithmetic (several times
    cheaper, and called for every time field of every answer)."""
    if value is None:
        return None
    since = (value if value.tzinfo else value.replace(tzinfo=UTC)) - _EPOCH
    seconds = since.days * 86_400 + since.seconds
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=since.microseconds * 1000)
