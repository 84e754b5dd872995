"""The sentinel's schedule: an APScheduler ``AsyncIOScheduler`` job every --sentinel-interval
seconds (one instance at a time, missed runs coalesced into one), calling the same ``Sentinel``
as ``RechargeOps.RunSentinel`` (they share its lock: one run at a time per process)."""

from __future__ import annotations

import asyncio
import contextlib

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from rc_common.logs import get_logger
from recharge_service.service_layer.sentinel import Sentinel

log = get_logger("sentinel")


class SentinelJob:
    def __init__(self, sentinel: Sentinel, interval: float) -> None:
        self._sentinel = sentinel
        self._interval = interval
        self._scheduler: AsyncIOScheduler | None = None
        self._current: asyncio.Task[None] | None = None

    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_job(
            self.tick,
            IntervalTrigger(seconds=self._interval),
            id="sentinel",
            name="sentinel",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        scheduler.start()
        self._scheduler = scheduler
        log.info("sentinel_scheduled", interval_s=self._interval)

    async def tick(self) -> None:
        self._current = asyncio.current_task()
        try:
            await self._sentinel.run()
        except asyncio.CancelledError:
            log.info("sentinel_run_cancelled")
            raise
        except Exception:  # the next tick tries again; nothing is half-done (every step resumes)
            log.exception("sentinel_run_failed")
        finally:
            self._current = None

    async def stop(self) -> None:
        """Stop scheduling and cancel a run in progress (its leases expire)."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
        task = self._current
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
