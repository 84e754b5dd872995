"""Delivers notifications on WeChat's schedule, with the notification faults.

What is due when is known in memory (:class:`DueTimes`): the commits that add notifications
say when they are due (``wake``), and the notifier schedules the retries itself, so a wake-up
costs no query. The database is asked only at start, every ``idle_s`` (work added by someone
else) and after anything the notifier cannot account for (a claim it did not foresee, a failed
commit).

Due notifications are claimed in one statement (their next attempt moves to the end of a lease of
``lease_s``, the longest an attempt may take: ``timeout_s`` per target; so an attempt whose outcome
is lost in a crash is made again then). Each is
delivered in its own task (so a DELAY fault lets later notifications overtake it): faults are
drawn for the attempt (``notify``: DROP loses it, DUPLICATE sends the same signed request twice,
DELAY waits ``delay_ms`` first), the body is signed afresh (new timestamp and nonce) and the
merchant's answer is awaited up to ``timeout_s`` (the client may be a
:class:`~wechat_mock.service_layer.replicas.ReplicaSet`: then the attempt goes on to the next
replica while one gives no answer). Outcomes are recorded in batches, one commit for all that
arrived meanwhile: SUCCESS ends the notification; anything else schedules the next attempt after
the schedule's next gap, or gives up after the last one. The log names the target that answered.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from rc_common.faults import FaultKind, FaultRule
from rc_common.logs import get_logger
from wechat_mock.domain.notifications import DeliveryStatus, Notification
from wechat_mock.service_layer.context import Context
from wechat_mock.service_layer.due_loop import DueLoop
from wechat_mock.service_layer.due_times import DueTimes
from wechat_mock.service_layer.ports import (
    DeliveryOutcome,
    DeliveryResult,
    Due,
    NotificationClient,
    UrlNotificationClient,
)
from wechat_mock.service_layer.wire import UnknownSigner

log = get_logger("wechat.notifier")

NOTIFY_METHOD = "notify"
NOTIFY_FAULTS = frozenset({FaultKind.DROP, FaultKind.DUPLICATE, FaultKind.DELAY})
#: How the notifier's claims and records are counted (``Database.stats.labelled``).
LABEL = "notifier"


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
        lease_s: float | None = None,
        url_client: UrlNotificationClient | None = None,
    ) -> None:
        """``lease_s``: how long a claimed attempt may take before it is due again (default
        ``timeout_s``; with several targets, ``timeout_s`` each). ``client`` delivers the
        notifications without a ``notify_url`` (gRPC, ``--notify-target``), ``url_client`` those
        with one (HTTP POST to it)."""
        self._ctx = ctx
        self._client = client
        self._url_client = url_client
        self._schedule = tuple(schedule)
        self._timeout_s = timeout_s
        self._probe_rate = sign_probe_rate
        self._batch = batch
        self._lease = timedelta(seconds=timeout_s if lease_s is None else lease_s)
        self._idle = timedelta(seconds=idle_s)
        self._due = DueTimes()
        #: The database's earliest due time, when it was asked (it may be work not in ``_due``).
        self._looked_up: datetime | None = None
        #: When to ask the database again (None: at the next step).
        self._look_again_at: datetime | None = None
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._outcomes: list[tuple[Notification, DeliveryResult]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._stopping = False
        self._rng = random.Random()
        self.loop = DueLoop("notifier", self._step, ctx.clock, idle_s=idle_s)

    def start(self) -> None:
        self.loop.start()

    def wake(self, added: Iterable[Due] = ()) -> None:
        """Look again now; ``added``: the notifications just committed, and when each is due."""
        for notification_id, due in added:
            if notification_id not in self._inflight:
                self._due.set(notification_id, due)
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
        if self._look_again_at is None or now >= self._look_again_at:
            async with self._ctx.uow(readonly=True) as uow:
                self._looked_up = await uow.notifications.next_due(self._inflight)
            self._look_again_at = now + self._idle
        next_due = self._next_due()
        if next_due is None or next_due > now:
            return next_due
        taken = self._due.take_due(now)
        try:
            async with self._ctx.uow(label=LABEL) as uow:
                claim = uow.notifications.claim_due(now, self._inflight, self._batch, now + self._lease)
                await uow.commit()
        except BaseException:
            for when, notification_id in taken:  # not claimed: still due
                self._due.set(notification_id, when)
            raise
        claimed = claim.value
        foreseen = {key for _, key in taken}
        foreseen.update(n.id for n in claimed if n.id in self._due)  # told while the claim ran
        unforeseen = any(n.id not in foreseen for n in claimed)
        self._due.discard(n.id for n in claimed)
        for notification in claimed:
            self._inflight.add(notification.id)
            task = asyncio.create_task(self._attempt(notification), name=f"notify-{notification.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if len(claimed) == self._batch:
            for when, notification_id in taken:  # still due: the claim had no room for them
                if notification_id not in self._inflight:
                    self._due.set(notification_id, when)
            return now
        self._looked_up = None  # whatever was due is claimed
        if unforeseen:  # the database held work not told here: ask it what else there is
            self._look_again_at = None
            return now
        return self._next_due()

    def _next_due(self) -> datetime | None:
        known, looked_up = self._due.first(), self._looked_up
        if known is None or (looked_up is not None and looked_up < known):
            return looked_up
        return known

    async def _attempt(self, notification: Notification) -> None:
        try:
            rule = self._ctx.faults.draw(NOTIFY_METHOD, NOTIFY_FAULTS)
            result = await self._deliver(notification, rule)
        except Exception:
            log.exception("notification_attempt_crashed", notification_id=notification.id)
            self._inflight.discard(notification.id)
            self.wake([(notification.id, notification.next_attempt_at)])  # when its lease ends
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
                recorded = False
                try:
                    await self._record(batch)
                    recorded = True
                except Exception:
                    log.exception("notification_outcomes_not_recorded", count=len(batch))
                finally:
                    for notification, _ in batch:
                        self._inflight.discard(notification.id)
                if not recorded:
                    self._look_again_at = None  # what was written is unknown: ask the database
                    self.wake()
                    continue
                retries = [(n.id, n.next_attempt_at) for n, _ in batch if n.status is DeliveryStatus.PENDING]
                if retries:
                    self.wake(retries)
        finally:
            self._recorder = None

    async def _deliver(self, notification: Notification, rule: FaultRule | None) -> DeliveryResult:
        if rule is not None:
            log.info(
                "fault_injected",
                method=NOTIFY_METHOD,
                kind=rule.kind.name,
                delay_ms=rule.delay_ms,
                notification_id=notification.id,
                event_type=notification.event_type,
            )
        if rule is not None and rule.kind is FaultKind.DELAY:
            await asyncio.sleep(rule.delay_s)
        try:
            self._ctx.wire.keys_of(notification.signer)
        except UnknownSigner as exc:  # a failed attempt: the schedule goes on, then gives up
            return DeliveryResult(DeliveryOutcome.NO_ANSWER, str(exc))
        if self._probe_rate and self._rng.random() < self._probe_rate:
            await self._probe(notification)
        headers = self._ctx.wire.headers(notification.body, self._ctx.clock(), notification.signer)
        if rule is not None and rule.kind is FaultKind.DROP:
            return DeliveryResult(DeliveryOutcome.NO_ANSWER, "dropped on the way (injected DROP)")
        if rule is None or rule.kind is not FaultKind.DUPLICATE:
            return await self._post(notification, headers)
        results = await asyncio.gather(*(self._post(notification, headers) for _ in range(2)))
        acknowledged = [r for r in results if r.acknowledged]
        return acknowledged[0] if acknowledged else results[0]

    async def _probe(self, notification: Notification) -> None:
        headers = self._ctx.wire.probe_headers(notification.body, self._ctx.clock(), notification.signer)
        result = await self._post(notification, headers)
        if result.acknowledged:
            log.warning(
                "sign_probe_accepted",
                notification_id=notification.id,
                hint="the merchant accepted a notification with an invalid signature",
            )
        else:
            log.info("sign_probe_refused", notification_id=notification.id, detail=result.detail)

    async def _post(self, notification: Notification, headers: dict[str, str]) -> DeliveryResult:
        """One POST: to the notification's ``notify_url`` (HTTP) or else to ``--notify-target``."""
        url = notification.notify_url
        if not url:
            return await self._client.deliver(headers, notification.body, self._timeout_s)
        if self._url_client is None:
            return DeliveryResult(DeliveryOutcome.NO_ANSWER, f"no HTTP notification client for {url}", url)
        return await self._url_client.deliver_to(url, headers, notification.body, self._timeout_s)

    async def _record(self, batch: list[tuple[Notification, DeliveryResult]]) -> None:
        """Record a batch of attempts in one commit."""
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


def _log_outcome(notification: Notification, result: DeliveryResult) -> None:
    fields = {
        "notification_id": notification.id,
        "event_type": notification.event_type,
        "out_trade_no": notification.out_trade_no,
        "attempt": notification.attempts,
        "target": result.target,
    }
    if result.skipped:  # replicas that gave no answer before this one
        fields["skipped"] = list(result.skipped)
    if notification.status is DeliveryStatus.DELIVERED:
        log.info("notification_delivered", **fields)
    elif notification.status is DeliveryStatus.GIVEN_UP:
        log.warning("notification_given_up", detail=result.detail, **fields)
    else:
        log.info(
            "notification_failed",
            detail=result.detail,
            next_attempt_at=notification.next_attempt_at.isoformat(),
            **fields,
        )
