"""Waiting in tests on a condition, never on the clock.

``await eventually(check, what=...)`` runs ``check`` (a plain or an async callable) again and again
until it returns something truthy, and returns that. After ``within`` seconds it fails the test
with an AssertionError that says what did not happen and what the check last returned. The
overall timeout is generous on purpose: it only ends a test that is failing anyway, so a fast
machine does not wait any longer and a slow one does not flake.

``wait_until`` is the same for synchronous code (threads, subprocesses).

A fixed ``sleep`` stays in a test only where the passage of time is itself the point (a window,
a lease or a schedule has to elapse, or nothing may happen for a while); it then says why.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: Long enough for a loaded CI machine; a passing test never waits for it.
WITHIN = 10.0
#: How often a condition is checked again.
INTERVAL = 0.01


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    *,
    within: float = WITHIN,
    interval: float = INTERVAL,
    what: str = "",
) -> T:
    """Re-run ``check`` until it returns a truthy value, then return that value; fail the test
    (AssertionError naming ``what``) if that has not happened after ``within`` seconds."""
    last: object = None
    try:
        async with asyncio.timeout(within) as window:
            while True:
                value = check()
                if inspect.isawaitable(value):
                    value = await value
                last = value
                if value:
                    return value
                await asyncio.sleep(interval)
    except TimeoutError:
        if not window.expired():  # raised by the check itself, not our deadline
            raise
        raise AssertionError(_failure(check, within, what, last)) from None


def wait_until(
    check: Callable[[], T],
    *,
    within: float = WITHIN,
    interval: float = INTERVAL,
    what: str = "",
) -> T:
    """The synchronous twin of :func:`eventually` (blocks the calling thread)."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_failure(check, within, what, value))
        time.sleep(interval)


def _failure(check: Callable[..., object], within: float, what: str, last: object) -> str:
    return f"{what or _describe(check)} did not happen within {within:g} s (the check last gave {last!r})"


def _describe(check: Callable[..., object]) -> str:
    name = getattr(check, "__qualname__", repr(check))
    if name.endswith("<lambda>"):
        try:
            return f"`{inspect.getsource(check).strip()}`"
        except (OSError, TypeError):
            pass
    return f"`{name}`"
