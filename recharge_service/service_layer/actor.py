"""Who is acting (``system``, ``wechat``, ``sentinel``, an operator): recorded on timeline rows."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

current_actor: contextvars.ContextVar[str] = contextvars.ContextVar("current_actor", default="system")


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[None]:
    token = current_actor.set(actor)
    try:
        yield
    finally:
        current_actor.reset(token)


def actor() -> str:
    return current_actor.get()
