"""Settings as frozen dataclasses, filled from command-line flags and environment variables.

Each field is declared with :func:`setting`, which records its help text and environment
variable. A service groups its settings by concern: a field declared with :func:`group` holds
another settings dataclass whose flags are ``--{prefix}-{name}`` (or the field's own ``flag=``), so
the flags stay flat while the code reads ``settings.sentinel.hold``. :func:`parse_settings` builds
an ``argparse`` parser from the dataclasses, so ``--help`` documents every flag with its variable
and default, one section per group. Precedence: flag > environment > default. An ``Enum`` field
takes one of its values (``--help`` lists them). ``only`` limits a parser to some flags (a
subcommand such as ``migrate`` that needs only ``--db``): the other fields keep their defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import types
import typing
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def setting(default: Any, *, env: str, help: str, flag: str = "") -> Any:
    """Declare a settings field with its environment variable and help text; ``flag`` names its
    flag when the group's ``--{prefix}-{name}`` would not read well."""
    return dataclasses.field(default=default, metadata={"env": env, "help": help, "flag": flag})


def group(cls: type[T], *, prefix: str = "", title: str) -> Any:
    """Declare a field holding the settings group ``cls`` (its defaults unless flags say otherwise)."""
    return dataclasses.field(default_factory=cls, metadata={"group": prefix, "title": title})


class InvalidSetting(ValueError):
    """A field's value a group's ``validate`` refuses; the parser names the field's flag."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def require_at_least_one(owner: object, *names: str) -> None:
    for name in names:
        if getattr(owner, name) < 1:
            raise InvalidSetting(name, "must be at least 1")


def require_positive(owner: object, *names: str) -> None:
    for name in names:
        if getattr(owner, name) <= 0:
            raise InvalidSetting(name, "must be positive")


@dataclasses.dataclass(frozen=True)
class _Flag:
    dest: str  # unique argparse destination
    flag: str
    field: dataclasses.Field[Any]
    kind: Any


def _coerce(kind: Any, raw: str) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"not a boolean: {raw!r}")
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(raw.strip().lower())
        except ValueError:
            raise ValueError(f"must be one of {', '.join(str(m.value) for m in kind)}, got {raw!r}") from None
    if kind in (tuple[float, ...], tuple[int, ...]):
        item = typing.get_args(kind)[0]
        return tuple(item(part) for part in raw.split(",") if part.strip())
    return kind(raw)


def _field_type(cls: type, field: dataclasses.Field[Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kind = hints[field.name]
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        kind = args[0]
    return kind


def _flags(
    cls: type,
    prefix: str,
    parser: Any,
    into: dict[str, list[_Flag]],
    path: str,
    only: Collection[str] | None = None,
) -> None:
    """Add ``cls``'s flags to ``parser`` (recursing into groups); ``into[path]`` lists them.
    ``only``: the flags (by name, ``db`` for ``--db``) to add; None = all."""
    into[path] = []
    for field in dataclasses.fields(cls):
        if "group" in field.metadata:
            section = parser.add_argument_group(field.metadata["title"])
            inner = field.metadata["group"]
            nested = f"{prefix}-{inner}" if prefix and inner else prefix or inner
            _flags(_field_type(cls, field), nested, section, into, f"{path}.{field.name}", only)
            continue
        if "env" not in field.metadata:
            continue
        name = field.metadata["flag"] or (f"{prefix}_{field.name}" if prefix else field.name)
        if only is not None and name not in only:
            continue
        flag = "--" + name.replace("_", "-")
        kind = _field_type(cls, field)
        default = field.default
        if isinstance(default, tuple):
            default = ",".join(str(x) for x in default)
        if isinstance(default, enum.Enum):
            default = default.value
        extra = ""
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            extra = f" {{{', '.join(str(m.value) for m in kind)}}}"
        dest = f"{path}.{field.name}"
        parser.add_argument(
            flag,
            dest=dest,
            default=None,
            metavar=name.upper(),
            help=f"{field.metadata['help']}{extra} [env {field.metadata['env']}] (default: {default})",
        )
        into[path].append(_Flag(dest, flag, field, kind))


def _build(cls: type[T], path: str, args: argparse.Namespace, flags: dict[str, list[_Flag]]) -> T:
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if "group" in field.metadata:
            values[field.name] = _build(_field_type(cls, field), f"{path}.{field.name}", args, flags)
    for spec in flags[path]:
        raw = getattr(args, spec.dest)
        source = "flag " + spec.flag
        if raw is None:
            raw = os.environ.get(spec.field.metadata["env"])
            source = "environment variable " + spec.field.metadata["env"]
        if raw is None:
            continue
        try:
            values[spec.field.name] = _coerce(spec.kind, raw)
        except ValueError as exc:
            raise _Refused(f"{source}: {exc}") from exc
    built = cls(**values)
    validate = getattr(built, "validate", None)
    if callable(validate):
        try:
            validate()
        except InvalidSetting as exc:
            named = {spec.field.name: spec.flag for spec in flags[path]}
            raise _Refused(f"{named.get(exc.field, exc.field)}: {exc.problem}") from exc
        except ValueError as exc:
            raise _Refused(str(exc)) from exc
    return built


class _Refused(Exception):
    """A value the settings do not accept (the parser exits with usage)."""


def parse_settings(
    cls: type[T],
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    epilog: str | None = None,
    only: Collection[str] | None = None,
) -> T:
    """Build ``cls`` from ``argv`` (flags) and ``os.environ``; exits with usage on bad input.
    ``epilog`` closes ``--help``; ``only`` names the flags offered (None: every field's)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    flags: dict[str, list[_Flag]] = {}
    _flags(cls, "", parser, flags, "", only)
    args = parser.parse_args(argv)
    try:
        return _build(cls, "", args, flags)
    except _Refused as exc:
        parser.error(str(exc))


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``host:port``; raises ValueError naming the problem."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"listen address must be host:port, got {listen!r}")
    return host, int(port)
