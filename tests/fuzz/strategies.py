"""Hypothesis strategies built from the protobuf descriptors: any message of any request type,
with the edge values that broke things before (issue 14: int64 extremes, unknown enum numbers,
dates out of range, deep JSON, forged page tokens) among the random ones, and the entities a
running stack knows (its merchants, cards, orders) so requests get past the first check.

* :func:`requests` — a request of the RPC, every field drawn freely (known values among them);
* :func:`valid_requests` — every field the stack knows by name set to a known value;
* :func:`mutated` — a valid request with one field replaced, or its bytes flipped, cut or grown.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

F = FieldDescriptor
MAX_DEPTH = 3


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


#: Strings that broke (or could break) a handler: issue 14's reproducers and their kin.
TRICKY_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "[" * 1000,
    "{" * 300,
    _b64("[" * 1000),
    _b64('{"after":["2026-01-01T00:00:00","R1"]}'),
    _b64('{"after":["2026-01-01T00:00:00+00:00","R1"]}'),
    _b64('{"before":["R1"]}'),
    _b64('{"journal":["6600000000000001","9223372036854775808"]}'),
    _b64('{"sent":["2026-01-01T00:00:00+00:00","M1"]}'),
    "eyJhZnRlciI6WyIyMDI2Il19.AAAA",
    "9999-12-31",
    "0001-01-01",
    "2026-02-30",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
    "2026-11-30T12:00:00+08:00",
    "-1",
    "9223372036854775808",
    "*",
    "x" * 5000,
    "\x00",
    "é" * 40,
    "😀" * 20,
    "'; DROP TABLE recharge_orders; --",
    "%s%s%n",
    "SUCCESS",
    "TRANSACTION.SUCCESS",
    "REFUND.SUCCESS",
)
TRICKY_BYTES: tuple[bytes, ...] = (
    b"",
    b"[" * 1000,
    b"{}",
    b"\xff\xfe",
    b'{"resource_type":"encrypt-resource"}',
)


def pick(values: Sequence[Any]) -> st.SearchStrategy[Any]:
    """One of ``values`` — read when drawn, so a list that grows during the run (the order
    numbers the stack hands out) offers its new values too."""
    return st.integers(0, 2**16).map(lambda index: values[index % len(values)])


def _int_range(kind: int) -> tuple[int, int]:
    if kind in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32, F.TYPE_ENUM):
        return -(2**31), 2**31 - 1
    if kind in (F.TYPE_UINT32, F.TYPE_FIXED32):
        return 0, 2**32 - 1
    if kind in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return 0, 2**64 - 1
    return -(2**63), 2**63 - 1


def _integers(kind: int) -> st.SearchStrategy[int]:
    low, high = _int_range(kind)
    edges = [v for v in (low, -1, 0, 1, 99, 100, 10_000, 5_000_001, high) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high), st.integers(0, 1_000_000))


def _scalar(field: FieldDescriptor, known: Mapping[str, Sequence[Any]]) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == F.TYPE_BOOL:
        base: st.SearchStrategy[Any] = st.booleans()
    elif kind == F.TYPE_STRING:
        base = st.one_of(st.sampled_from(TRICKY_STRINGS), st.text(max_size=40))
    elif kind == F.TYPE_BYTES:
        base = st.one_of(st.sampled_from(TRICKY_BYTES), st.binary(max_size=64))
    elif kind in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        base = st.floats(width=32 if kind == F.TYPE_FLOAT else 64)
    elif kind == F.TYPE_ENUM:
        declared = [v.number for v in field.enum_type.values]
        base = st.one_of(st.sampled_from(declared), st.sampled_from([99, -1, 2**31 - 1]), _integers(kind))
    else:
        base = _integers(kind)
    values = known.get(field.name)
    return st.one_of(pick(values), base) if values else base


def _field(field: FieldDescriptor, known: Mapping[str, Sequence[Any]], depth: int) -> st.SearchStrategy[Any]:
    message_type = field.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        key_field, value_field = message_type.fields_by_name["key"], message_type.fields_by_name["value"]
        return st.dictionaries(
            _single(key_field, known, depth), _single(value_field, known, depth), max_size=4
        )
    single = _single(field, known, depth)
    if field.is_repeated:
        return st.lists(single, max_size=4)
    return single


def _single(field: FieldDescriptor, known: Mapping[str, Sequence[Any]], depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None:
        return message(field.message_type, known, depth + 1)
    return _scalar(field, known)


def _set(target: Message, field: FieldDescriptor, value: Any) -> None:
    current = getattr(target, field.name)
    message_type = field.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        for key, item in value.items():
            if isinstance(item, Message):
                current[key].CopyFrom(item)
            else:
                current[key] = item
    elif field.is_repeated:
        if message_type is not None:
            for item in value:
                current.add().CopyFrom(item)
        else:
            current.extend(value)
    elif message_type is not None:
        current.CopyFrom(value)
    else:
        setattr(target, field.name, value)


def message(
    descriptor: Descriptor, known: Mapping[str, Sequence[Any]] = {}, depth: int = 0
) -> st.SearchStrategy[Message]:
    """Any message of ``descriptor``: each field present or not, drawn from its type's values
    (``known[name]`` among them); nested messages stop at ``MAX_DEPTH``."""
    cls = message_factory.GetMessageClass(descriptor)
    if depth > MAX_DEPTH:
        return st.just(cls())
    optional = {f.name: _field(f, known, depth) for f in descriptor.fields}

    def build(values: dict[str, Any]) -> Message:
        built = cls()
        for name, value in values.items():
            _set(built, descriptor.fields_by_name[name], value)
        return built

    return st.fixed_dictionaries({}, optional=optional).map(build)


def valid_message(
    descriptor: Descriptor, known: Mapping[str, Sequence[Any]], depth: int = 0
) -> st.SearchStrategy[Message]:
    """A message whose fields named in ``known`` take known values (nested messages too); other
    fields stay unset."""
    cls = message_factory.GetMessageClass(descriptor)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if (
            field.message_type is not None
            and not field.message_type.GetOptions().map_entry
            and depth < MAX_DEPTH
        ):
            nested = valid_message(field.message_type, known, depth + 1)
            parts[field.name] = st.lists(nested, min_size=1, max_size=1) if field.is_repeated else nested
        elif field.name in known and field.message_type is None:
            value = pick(known[field.name])
            parts[field.name] = st.lists(value, min_size=1, max_size=2) if field.is_repeated else value

    def build(values: dict[str, Any]) -> Message:
        built = cls()
        for name, value in values.items():
            _set(built, descriptor.fields_by_name[name], value)
        return built

    return st.fixed_dictionaries(parts).map(build)


@st.composite
def mutated(draw: st.DrawFn, descriptor: Descriptor, known: Mapping[str, Sequence[Any]]) -> bytes:
    """A valid request, then one change: a field redrawn freely, or its bytes flipped, cut or
    grown. The result may no longer decode (the caller checks)."""
    valid = draw(valid_message(descriptor, known))
    how = draw(st.sampled_from(["field", "field", "flip", "cut", "grow"]))
    if how == "field" and descriptor.fields:
        field = draw(st.sampled_from(list(descriptor.fields)))
        valid.ClearField(field.name)
        _set(valid, field, draw(_field(field, {}, 0)))
        return valid.SerializeToString()
    data = bytearray(valid.SerializeToString())
    if how == "flip" and data:
        index = draw(st.integers(0, len(data) - 1))
        data[index] ^= draw(st.integers(1, 255))
    elif how == "cut" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    else:
        data += draw(st.binary(min_size=1, max_size=32))
    return bytes(data)
