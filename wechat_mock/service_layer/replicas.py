"""Notifications to a merchant that runs several replicas (``--notify-target A,B,…``): one
:class:`NotificationClient` over one client per target, spreading the attempts as a load balancer
would.

Each attempt starts at the next target in turn (round robin, so the load is spread) and goes on to
the following ones only while a target gives no answer (an RPC error, a timeout, connection
refused): a replica that is down costs a quick refusal to connect, not a wait for WeChat's retry
schedule. An answer ends the attempt wherever it comes from: SUCCESS delivers it; FAIL (or any
other code) is that replica refusing this notification, so it is not offered to another one — the
schedule retries it, from the next target in turn. Only when no target answered does the attempt
end NO_ANSWER.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from wechat_mock.service_layer.ports import DeliveryOutcome, DeliveryResult, NotificationClient


class ReplicaSet:
    """The merchant's replicas as one notification client; no replicas: every attempt fails."""

    def __init__(self, replicas: Sequence[NotificationClient]) -> None:
        self._replicas = tuple(replicas)
        #: Where the next attempt starts.
        self._next = 0

    async def deliver(self, headers: Mapping[str, str], body: bytes, timeout_s: float) -> DeliveryResult:
        if not self._replicas:
            return DeliveryResult(DeliveryOutcome.NO_ANSWER, "no --notify-target configured")
        count = len(self._replicas)
        first, self._next = self._next, (self._next + 1) % count
        unanswered: list[DeliveryResult] = []
        for offset in range(count):
            result = await self._replicas[(first + offset) % count].deliver(headers, body, timeout_s)
            if result.outcome is not DeliveryOutcome.NO_ANSWER:
                return replace(result, skipped=tuple(r.detail for r in unanswered))
            unanswered.append(result)
        if count == 1:
            return unanswered[0]
        details = "; ".join(r.detail for r in unanswered)
        return DeliveryResult(DeliveryOutcome.NO_ANSWER, f"no target answered: {details}")
