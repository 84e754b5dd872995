"""``python -m <service>``: settings from flags and environment, logging, then serve until stopped.

Each service's ``__main__`` names its settings class, its ``bootstrap.serve`` and the line ``--help``
opens with; everything else about starting a process is here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol, TypeVar

from rc_common.logs import configure_logging
from rc_common.settings import parse_settings


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
) -> None:
    """Parse ``settings_cls`` (usage ``python -m {package}``; exits on bad input or ``--help``),
    configure logging, and run ``serve(settings)`` on a fresh event loop."""
    settings = parse_settings(settings_cls, argv, prog=f"python -m {package}", description=description)
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))
