"""The outbox dispatcher: an asyncio loop polling every --outbox-interval seconds."""

from __future__ import annotations

import asyncio
import contextlib

from rc_common.logs import get_logger
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.dispatch import OutboxPolicy, dispatch_once
from recharge_service.service_layer.ports import CallbackSender, NoticeSender

log = get_logger("outbox")


class OutboxDispatcher:
    def __init__(
        self,
        deps: Deps,
        notices: NoticeSender,
        callbacks: CallbackSender,
        policy: OutboxPolicy,
        interval: float,
    ) -> None:
        self._deps = deps
        self._notices = notices
        self._callbacks = callbacks
        self._policy = policy
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox-dispatcher")

    async def run_once(self) -> int:
        return await dispatch_once(self._deps, self._notices, self._callbacks, self._policy)

    async def _run(self) -> None:
        while True:
            try:
                busy = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep dispatching; the rows stay pending and are retried
                log.exception("outbox_dispatch_failed")
                busy = 0
            if busy < self._policy.batch:
                await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
