"""Per-key asyncio locks (a card, an order number, a consume request id), created on demand.

The card system runs as one process, so these in-process locks are its "row locks": confirm, void
and consume on one card queue here, *before* a database transaction is opened. Keys are always
taken in the order the caller lists them; callers list the order or request key before the card
key, so no two callers can wait on each other in a cycle. An unused lock is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]

    def held(self, key: str) -> bool:
        lock = self._locks.get(key)
        return lock is not None and lock.locked()

    def __len__(self) -> int:
        return len(self._locks)


def card_key(card_no: str) -> str:
    return f"card:{card_no}"


def order_key(order_no: str) -> str:
    return f"order:{order_no}"


def consume_key(request_id: str) -> str:
    return f"consume:{request_id}"


RULE_KEY = "rule"
