"""Delivers notifications on WeChat's schedule, with the notification faults.

Due notifications are claimed in one statement (their next attempt moves to the end of a lease of
``timeout_s``, so an attempt whose outcome is lost — a crash — is made again then). Each is
delivered in its own task (so a DELAY fault lets later notifications overtake it): faults are
drawn for the attempt (``notify``: DROP loses it, DUPLICATE sends the same signed request twice,
DELAY waits ``delay_ms`` first), the body is signed afresh (new timestamp and nonce) and the
merchant's answer is awaited up to ``timeout_s``. Outcomes are recorded in batches, one commit
for all that arrived meanwhile: SUCCESS ends the notification; anything else schedules the next
attempt after the schedule's next gap, or gives up after the last one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from rc_common.faults import FaultKind, FaultRule
from rc_common.logs import get_logger
from wechat_mock.adapters.notification_client import DeliveryResult
from wechat_mock.domain.notifications import DeliveryStatus, Notification
from wechat_mock.service_layer.context import Context
from wechat_mock.service_layer.due_loop import DueLoop

log = get_logger("wechat.notifier")

NOTIFY_METHOD = "notify"
NOTIFY_FAULTS = frozenset({FaultKind.DROP, FaultKind.DUPLICATE, FaultKind.DELAY})
#: How the notifier's claims and records are counted (``Database.stats.labelled``).
LABEL = "notifier"


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
        self._lease = timedelta(seconds=timeout_s)
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._outcomes: list[tuple[Notification, DeliveryResult]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._stopping = False
        self._rng = random.Random()
        self.loop = DueLoop("notifier", self._step, ctx.clock, idle_s=idle_s)

    def start(self) -> None:
        self.loop.start()

    def wake(self) -> None:
        self.loop.wake()

    async def stop(self) -> None:
        """Stop claiming work; abandon deliveries still on the way (they stay PENDING, due again
        when their lease ends, after a restart too) but let outcomes already in hand commit."""
        self._stopping = True
        await self.loop.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._recorder is not None:
            await asyncio.gather(self._recorder, return_exceptions=True)

    async def _step(self) -> datetime | None:
        now = self._ctx.clock()
        async with self._ctx.uow(label=LABEL) as uow:
            next_due = await uow.notifications.next_due(self._inflight)
            if next_due is None or next_due > now:
                return next_due
            claim = uow.notifications.claim_due(now, self._inflight, self._batch, now + self._lease)
            await uow.commit()
        for notification in claim.value:
            self._inflight.add(notification.id)
            task = asyncio.create_task(self._attempt(notification), name=f"notify-{notification.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if len(claim.value) == self._batch:
            return now
        async with self._ctx.uow(readonly=True) as uow:
            return await uow.notifications.next_due(self._inflight)

    async def _attempt(self, notification: Notification) -> None:
        try:
            rule = self._ctx.faults.draw(NOTIFY_METHOD, NOTIFY_FAULTS)
            result = await self._deliver(notification, rule)
        except Exception:
            log.exception("notification_attempt_crashed", notification_id=notification.id)
            self._inflight.discard(notification.id)
            self.wake()
            return
        if self._stopping:
            return
        self._outcomes.append((notification, result))
        if self._recorder is None:
            self._recorder = asyncio.create_task(self._record_outcomes(), name="notify-record")

    async def _record_outcomes(self) -> None:
        """Record the outcomes in hand, one commit per batch, until none is left."""
        try:
            while self._outcomes:
                batch, self._outcomes = self._outcomes, []
                retry_due = True  # unless every outcome is recorded as final, look again
                try:
                    retry_due = await self._record(batch)
                except Exception:
                    log.exception("notification_outcomes_not_recorded", count=len(batch))
                finally:
                    for notification, _ in batch:
                        self._inflight.discard(notification.id)
                if retry_due:
                    self.wake()
        finally:
            self._recorder = None

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

    async def _record(self, batch: list[tuple[Notification, DeliveryResult]]) -> bool:
        """Record a batch of attempts in one commit; True when some notification is still PENDING."""
        now = self._ctx.clock()
        for notification, result in batch:
            if result.acknowledged:
                notification.record_success(now)
            else:
                notification.record_failure(now, self._schedule, result.detail)
        async with self._ctx.uow(label=LABEL) as uow:
            uow.notifications.record([notification for notification, _ in batch])
            await uow.commit()
        for notification, result in batch:
            _log_outcome(notification, result)
        return any(n.status is DeliveryStatus.PENDING for n, _ in batch)


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
