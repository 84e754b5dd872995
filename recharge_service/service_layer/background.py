"""Work that runs after an answer was sent (the confirm after a payment notification).

Tasks are tracked so shutdown can wait for them (then cancel what is left: every step is safe to
cancel, the sentinel finishes what was interrupted). One task per key at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from rc_common.admission import detach
from rc_common.logs import get_logger

log = get_logger("background")


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._closed = False
        self._stopping = asyncio.Event()

    def spawn(self, key: str, work: Callable[[], Awaitable[Any]]) -> bool:
        """Start ``work()`` unless a task with ``key`` is still running; False when not started."""
        if self._closed or (key in self._tasks and not self._tasks[key].done()):
            return False

        async def run() -> None:
            detach()  # goes on after the answer: under its own settings, not the caller's deadline
            try:
                await work()
            except asyncio.CancelledError:
                log.info("background_task_cancelled", key=key)
                raise
            except Exception:  # a failed follow-up step is the sentinel's to finish; log it
                log.exception("background_task_failed", key=key)

        task = asyncio.get_running_loop().create_task(run(), name=f"bg:{key}")
        self._tasks[key] = task
        task.add_done_callback(
            lambda done: self._tasks.pop(key, None) if self._tasks.get(key) is done else None
        )
        return True

    def spawn_later(self, key: str, delay: float, work: Callable[[], Awaitable[Any]]) -> bool:
        """``spawn`` work that starts after ``delay`` seconds, or never if the service stops first
        (work of this kind is the sentinel's to finish)."""

        async def later() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
                return
            await work()

        return self.spawn(key, later)

    def running(self, key: str) -> bool:
        task = self._tasks.get(key)
        return task is not None and not task.done()

    async def join(self) -> None:
        """Wait until no task is running (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self, grace: float) -> None:
        """Refuse new work, wait up to ``grace`` seconds, then cancel what is still running."""
        self._closed = True
        self._stopping.set()
        pending = [task for task in self._tasks.values() if not task.done()]
        if not pending:
            return
        _done, still = await asyncio.wait(pending, timeout=grace)
        for task in still:
            task.cancel()
        for task in still:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
