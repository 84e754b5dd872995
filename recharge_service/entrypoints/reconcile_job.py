"""The daily reconciliation: an APScheduler cron job at ``--reconcile-at`` (+08:00) reconciling the
previous business day for every merchant (``--reconcile-enabled``), through the same
``Reconciler`` as ``RechargeOps.RunReconciliation`` (they share its lock)."""

from __future__ import annotations

import asyncio
import contextlib

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from rc_common.business_day import BUSINESS_TZ
from rc_common.logs import get_logger
from recharge_service.service_layer.reconcile import Reconciler, previous_business_day

log = get_logger("reconcile")

ACTOR = "scheduler"


class ReconcileJob:
    def __init__(self, reconciler: Reconciler, hour: int, minute: int) -> None:
        self._reconciler = reconciler
        self._hour = hour
        self._minute = minute
        self._scheduler: AsyncIOScheduler | None = None
        self._current: asyncio.Task[None] | None = None

    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=BUSINESS_TZ)
        scheduler.add_job(
            self.tick,
            CronTrigger(hour=self._hour, minute=self._minute, timezone=BUSINESS_TZ),
            id="reconcile",
            name="reconcile",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,  # a process started within the hour after the time still runs it
        )
        scheduler.start()
        self._scheduler = scheduler
        log.info("reconcile_scheduled", at=f"{self._hour:02d}:{self._minute:02d}+08:00")

    async def tick(self) -> None:
        self._current = asyncio.current_task()
        day = previous_business_day(self._reconciler.clock())
        try:
            runs = await self._reconciler.run(day, "", ACTOR)
            log.info("reconcile_job_done", day=day, runs=len(runs),
                     differences=sum(r.differences for r in runs))  # fmt: skip
        except asyncio.CancelledError:
            log.info("reconcile_job_cancelled", day=day)
            raise
        except Exception:  # tomorrow's run, or an operator's re-run, tries again
            log.exception("reconcile_job_failed", day=day)
        finally:
            self._current = None

    async def stop(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
        task = self._current
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
