"""Delivers notifications on WeChat's schedule, with the notification faults.

Each due notification is delivered in its own task (so a DELAY fault lets later notifications
overtake it): faults are drawn for the attempt (``notify``: DROP loses it, DUPLICATE sends the
same signed request twice, DELAY waits ``delay_ms`` first), the body is signed afresh (new
timestamp and nonce), the merchant's answer is awaited up to ``timeout_s``, and the outcome is
recorded in a new transaction: SUCCESS ends the notification; anything else schedules the next
attempt after the schedule's next gap, or gives up after the last one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from rc_common.faults import FaultKind, FaultRule
from rc_common.logs import get_logger
from wechat_mock.adapters.notification_client import DeliveryResult
from wechat_mock.domain.notifications import DeliveryStatus, Notification
from wechat_mock.service_layer.context import Context
from wechat_mock.service_layer.due_loop import DueLoop
from wechat_mock.service_layer.unit_of_work import retrying

log = get_logger("wechat.notifier")

NOTIFY_METHOD = "notify"
NOTIFY_FAULTS = frozenset({FaultKind.DROP, FaultKind.DUPLICATE, FaultKind.DELAY})


class NotificationClient(Protocol):
    async def deliver(self, headers: Mapping[str, str], body: bytes, timeout_s: float) -> DeliveryResult: ...


class Notifier:
    def __init__(
        self,
        ctx: Context,
        client: NotificationClient,
        *,
        schedule: Sequence[float],
        timeout_s: float,
        idle_s: float,
        sign_probe_rate: float = 0.0,
        batch: int = 100,
    ) -> None:
        self._ctx = ctx
        self._client = client
        self._schedule = tuple(schedule)
        self._timeout_s = timeout_s
        self._probe_rate = sign_probe_rate
        self._batch = batch
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._recording: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._rng = random.Random()
        self.loop = DueLoop("notifier", self._step, ctx.clock, idle_s=idle_s)

    def start(self) -> None:
        self.loop.start()

    def wake(self) -> None:
        self.loop.wake()

    async def stop(self) -> None:
        """Stop claiming work; abandon deliveries still on the way (they stay PENDING and are sent
        again after a restart) but let outcomes already being recorded commit."""
        self._stopping = True
        await self.loop.stop()
        for task in list(self._tasks):
            if task not in self._recording:
                task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _step(self) -> datetime | None:
        now = self._ctx.clock()
        async with self._ctx.uow(readonly=True) as uow:
            due = await uow.notifications.due(now, self._inflight, self._batch)
            for notification in due:
                self._inflight.add(notification.id)
            next_due = await uow.notifications.next_due(self._inflight)
        for notification in due:
            task = asyncio.create_task(self._attempt(notification), name=f"notify-{notification.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return now if len(due) == self._batch else next_due

    async def _attempt(self, notification: Notification) -> None:
        retry_due = True  # unless the outcome is recorded as final, the loop must look again
        try:
            rule = self._ctx.faults.draw(NOTIFY_METHOD, NOTIFY_FAULTS)
            result = await self._deliver(notification, rule)
            if self._stopping:
                return
            current = asyncio.current_task()
            assert current is not None
            self._recording.add(current)
            try:
                status = await retrying(lambda: self._record(notification.id, result))
                retry_due = status is DeliveryStatus.PENDING
            finally:
                self._recording.discard(current)
        except Exception:
            log.exception("notification_attempt_crashed", notification_id=notification.id)
        finally:
            self._inflight.discard(notification.id)
            if retry_due:
                self.wake()

    async def _deliver(self, notification: Notification, rule: FaultRule | None) -> DeliveryResult:
        if rule is not None:
            log.info("fault_injected", method=NOTIFY_METHOD, kind=rule.kind.name, delay_ms=rule.delay_ms,
                     notification_id=notification.id, event_type=notification.event_type)
        if rule is not None and rule.kind is FaultKind.DELAY:
            await asyncio.sleep(rule.delay_s)
        if self._probe_rate and self._rng.random() < self._probe_rate:
            await self._probe(notification)
        headers = self._ctx.wire.headers(notification.body, self._ctx.clock())
        if rule is not None and rule.kind is FaultKind.DROP:
            return DeliveryResult(False, "dropped on the way (injected DROP)")
        copies = 2 if rule is not None and rule.kind is FaultKind.DUPLICATE else 1
        results = await asyncio.gather(
            *(self._client.deliver(headers, notification.body, self._timeout_s) for _ in range(copies))
        )
        acknowledged = [r for r in results if r.acknowledged]
        return acknowledged[0] if acknowledged else results[0]

    async def _probe(self, notification: Notification) -> None:
        headers = self._ctx.wire.probe_headers(notification.body, self._ctx.clock())
        result = await self._client.deliver(headers, notification.body, self._timeout_s)
        if result.acknowledged:
            log.warning("sign_probe_accepted", notification_id=notification.id,
                        hint="the merchant accepted a notification with an invalid signature")
        else:
            log.info("sign_probe_refused", notification_id=notification.id, detail=result.detail)

    async def _record(self, notification_id: str, result: DeliveryResult) -> DeliveryStatus | None:
        """Record one attempt's outcome; returns the notification's status after it."""
        async with self._ctx.uow() as uow:
            notification = await uow.notifications.get(notification_id, for_update=True)
            if notification is None or notification.status is not DeliveryStatus.PENDING:
                return None if notification is None else notification.status
            now = self._ctx.clock()
            if result.acknowledged:
                notification.record_success(now)
            else:
                notification.record_failure(now, self._schedule, result.detail)
            await uow.notifications.update(notification)
            await uow.commit()
        _log_outcome(notification, result)
        return notification.status


def _log_outcome(notification: Notification, result: DeliveryResult) -> None:
    fields = {
        "notification_id": notification.id,
        "event_type": notification.event_type,
        "out_trade_no": notification.out_trade_no,
        "attempt": notification.attempts,
    }
    if notification.status is DeliveryStatus.DELIVERED:
        log.info("notification_delivered", **fields)
    elif notification.status is DeliveryStatus.GIVEN_UP:
        log.warning("notification_given_up", detail=result.detail, **fields)
    else:
        log.info("notification_failed", detail=result.detail,
                 next_attempt_at=notification.next_attempt_at.isoformat(), **fields)
