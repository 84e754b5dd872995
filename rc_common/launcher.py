"""``python -m <service>``: settings from flags and environment, logging, then serve until stopped;
``python -m <service> migrate [--db URL]``: bring the database's schema to this version.

Each service's ``__main__`` names its settings class, its ``bootstrap.serve``, the line ``--help``
opens with, its schema history and where its settings keep the database URL; everything else about
starting a process is here. A service refuses to start on a schema that is not this version's
(``rc_common.migrations.SchemaError``): it logs why (naming the migrate command) and exits with 1.
So does any other refusal to start as configured (:class:`StartRefused`: its event, what it names).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar

from rc_common.auth import AuthKeyError
from rc_common.logs import bind_process, configure_logging, get_logger
from rc_common.migrations import Schema, SchemaError, migrate
from rc_common.settings import parse_settings
from rc_common.tls import TlsConfigError

#: The flags ``migrate`` takes (by name): the database and how to log.
MIGRATE_FLAGS = ("db", "log_level", "log_format")


class StartRefused(Exception):
    """The service will not start as configured: logged as ``event`` with ``fields`` (which file,
    which setting), then the process exits with 1."""

    def __init__(self, event: str, message: str, **fields: str) -> None:
        super().__init__(message)
        self.event = event
        self.fields = fields


class ServiceSettings(Protocol):
    """What the launcher reads from any service's settings."""

    @property
    def log_level(self) -> str: ...

    @property
    def log_format(self) -> str: ...


S = TypeVar("S", bound=ServiceSettings)


def run_service(
    package: str,
    settings_cls: type[S],
    serve: Callable[[S], Coroutine[Any, Any, None]],
    description: str,
    argv: Sequence[str] | None = None,
    *,
    schema: Schema,
    database_url: Callable[[S], str],
    log_fields: Callable[[S], dict[str, str]] | None = None,
) -> None:
    """Parse ``settings_cls`` (usage ``python -m {package}``; exits on bad input or ``--help``),
    configure logging, and run ``serve(settings)`` on a fresh event loop; with ``migrate`` first,
    migrate the database ``database_url(settings)`` to ``schema``'s head instead. ``log_fields(settings)``:
    fields every log line of the process carries (the recharge center's ``node``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["migrate"]:
        settings = parse_settings(
            settings_cls,
            args[1:],
            prog=f"python -m {package} migrate",
            description=f"Bring the schema of {schema.what} to this version (creating it in an "
            "empty database), in one transaction under a lock: safe to run on every start, and by several "
            "replicas at once. A database made before migrations is adopted when its tables are "
            "those of a known revision.",
            only=MIGRATE_FLAGS,
        )
        work: Callable[[], Coroutine[Any, Any, object]] = partial(migrate, database_url(settings), schema)
    else:
        settings = parse_settings(
            settings_cls,
            args,
            prog=f"python -m {package}",
            description=description,
            epilog=f"The service refuses to start on a database whose schema is behind this version.\n"
            f"Migrate it first (make run and the tests do):\n  python -m {package} migrate [--db URL]",
        )
        work = partial(serve, settings)
    if log_fields is not None:
        bind_process(**log_fields(settings))
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(work())
    except SchemaError as refused:
        get_logger("launcher").error("schema_refused", error=str(refused))
        raise SystemExit(1) from None
    except StartRefused as refused:
        get_logger("launcher").error(refused.event, error=str(refused), **refused.fields)
        raise SystemExit(1) from None
    except (TlsConfigError, AuthKeyError) as refused:  # --tls-dir, --auth-key-file, a public plaintext listen
        get_logger("launcher").error("security_refused", error=str(refused))
        raise SystemExit(1) from None
