"""A background worker that does what is due, then sleeps until the next due time or a wake-up.

Due times live in the database, so a restart picks up exactly where the last run stopped.
``wake()`` is called after commits that add work; ``idle_s`` bounds every sleep anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime

from rc_common.logs import get_logger

log = get_logger("wechat.worker")


class DueLoop:
    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[datetime | None]],
        clock: Callable[[], datetime],
        *,
        idle_s: float,
        error_backoff_s: float = 1.0,
    ) -> None:
        self.name = name
        self._step = step
        self._clock = clock
        self._idle_s = idle_s
        self._error_backoff_s = error_backoff_s
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        self._woken = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, patience_s: float = 5.0) -> None:
        """Let the current step finish (it may be inside a transaction), then end the loop."""
        if self._task is None:
            return
        self._stopping = True
        self.wake()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), patience_s)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            self._woken = False
            try:
                next_due = await self._step()
                wait_s = self._idle_s
                if next_due is not None:
                    wait_s = min(wait_s, max(0.0, (next_due - self._clock()).total_seconds()))
            except Exception:
                log.exception("worker_step_failed", worker=self.name)
                wait_s = self._error_backoff_s
            if self._stopping:
                break
            if wait_s <= 0:
                await asyncio.sleep(0)
                continue
            if not self._woken:  # woken during the step: look again at once
                await self._sleep(wait_s)

    async def _sleep(self, wait_s: float) -> None:
        """Until ``wake()`` or ``wait_s`` has passed (one future and one timer, no task)."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(wait_s, _release, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
