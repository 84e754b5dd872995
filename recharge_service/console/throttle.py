"""Login throttling, per (account name, peer address).

After ``max_failures`` failed logins in a row the pair must wait ``lockout`` seconds before a
password is even checked again; each further lockout without a success in between doubles the
wait, up to ``lockout_max``. A success clears the pair. Unknown account names are throttled the
same way, so the answer never tells whether a name exists. Pairs not seen for longer than
``lockout_max`` are forgotten, and at most ``max_pairs`` are kept (the oldest dropped first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Key = tuple[str, str]


@dataclass
class _Record:
    failures: int = 0
    strikes: int = 0
    locked_until: float = 0.0
    last_seen: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures: int,
        lockout: float,
        lockout_max: float,
        max_pairs: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._lockout = lockout
        self._lockout_max = lockout_max
        self._max_pairs = max_pairs
        self._clock = clock
        self._records: OrderedDict[Key, _Record] = OrderedDict()

    def wait_seconds(self, subject: str, peer: str) -> float:
        """Seconds before a login of ``subject`` from ``peer`` is checked again (0: now)."""
        record = self._records.get((subject, peer))
        if record is None:
            return 0.0
        return max(record.locked_until - self._clock(), 0.0)

    def failed(self, subject: str, peer: str) -> None:
        now = self._clock()
        self._forget_stale(now)
        key = (subject, peer)
        record = self._records.pop(key, None) or _Record()
        record.failures += 1
        record.last_seen = now
        if record.failures >= self._max_failures:
            record.locked_until = now + min(self._lockout * 2**record.strikes, self._lockout_max)
            record.strikes += 1
            record.failures = 0
        self._records[key] = record
        while len(self._records) > self._max_pairs:
            self._records.popitem(last=False)

    def succeeded(self, subject: str, peer: str) -> None:
        self._records.pop((subject, peer), None)

    def _forget_stale(self, now: float) -> None:
        while self._records:
            key, oldest = next(iter(self._records.items()))
            if now - oldest.last_seen <= self._lockout_max or oldest.locked_until > now:
                return
            del self._records[key]
