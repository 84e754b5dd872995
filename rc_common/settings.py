"""Settings as frozen dataclasses, filled from command-line flags and environment variables.

Each field is declared with :func:`setting`, which records its help text and environment
variable. :func:`parse_settings` builds an ``argparse`` parser from the dataclass, so ``--help``
documents every flag with its variable and default. Precedence: flag > environment > default.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def setting(default: Any, *, env: str, help: str) -> Any:
    """Declare a settings field with its environment variable and help text."""
    return dataclasses.field(default=default, metadata={"env": env, "help": help})


def _coerce(kind: Any, raw: str) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"not a boolean: {raw!r}")
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


def parse_settings(
    cls: type[T], argv: Sequence[str] | None, *, prog: str, description: str
) -> T:
    """Build ``cls`` from ``argv`` (flags) and ``os.environ``; exits with usage on bad input."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fields = [f for f in dataclasses.fields(cls) if "env" in f.metadata]  # type: ignore[arg-type]
    for field in fields:
        flag = "--" + field.name.replace("_", "-")
        env = field.metadata["env"]
        default = field.default
        if isinstance(default, tuple):
            default = ",".join(str(x) for x in default)
        parser.add_argument(
            flag,
            dest=field.name,
            default=None,
            metavar=field.name.upper(),
            help=f"{field.metadata['help']} [env {env}] (default: {default})",
        )
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    for field in fields:
        kind = _field_type(cls, field)
        raw = getattr(args, field.name)
        source = "flag --" + field.name.replace("_", "-")
        if raw is None:
            raw = os.environ.get(field.metadata["env"])
            source = "environment variable " + field.metadata["env"]
        if raw is None:
            continue
        try:
            values[field.name] = _coerce(kind, raw)
        except ValueError as exc:
            parser.error(f"{source}: {exc}")
    settings = cls(**values)
    validate = getattr(settings, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as exc:
            parser.error(str(exc))
    return settings


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``host:port``; raises ValueError naming the problem."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"listen address must be host:port, got {listen!r}")
    return host, int(port)
