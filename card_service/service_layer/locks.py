"""Per-key asyncio locks (a card, an order number, a consume request id, a merchant's rule).

The card system runs as one process, so these in-process locks are its "row locks": confirm, void
and consume on one card queue here, *before* a write transaction is opened. Keys are always
taken in the order the caller lists them; callers list the order or request key before the card
key, so no two callers can wait on each other in a cycle.

Most holds meet no one: taking a free key only records it (no lock object, no future, no yield to
the event loop). Only a caller that finds the key held waits, on a future of its own, and the
holder hands the key to the first waiter when it leaves (first come, first served). A key nobody
holds or waits for is forgotten.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType


class KeyedLocks:
    def __init__(self) -> None:
        #: Held keys; the queue of waiters is created when the first one arrives.
        self._held: dict[str, deque[asyncio.Future[None]] | None] = {}

    def hold(self, key: str) -> _Hold:
        """``async with locks.hold(key):`` runs its body while no one else holds ``key``."""
        return _Hold(self, key)

    def held(self, key: str) -> bool:
        return key in self._held

    def __len__(self) -> int:
        return len(self._held)

    async def _acquire(self, key: str) -> None:
        if key not in self._held:
            self._held[key] = None
            return
        waiters = self._held[key]
        if waiters is None:
            waiters = self._held[key] = deque()
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed the key, then cancelled: pass it on
                self._release(key)
            else:
                waiters.remove(turn)
            raise

    def _release(self, key: str) -> None:
        waiters = self._held[key]
        while waiters:
            turn = waiters.popleft()
            if not turn.done():
                turn.set_result(None)  # the key stays held: it now belongs to that waiter
                return
        del self._held[key]


class _Hold:
    __slots__ = ("_key", "_locks")

    def __init__(self, locks: KeyedLocks, key: str) -> None:
        self._locks = locks
        self._key = key

    async def __aenter__(self) -> None:
        await self._locks._acquire(self._key)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._locks._release(self._key)


def card_key(card_no: str) -> str:
    return f"card:{card_no}"


def order_key(order_no: str) -> str:
    return f"order:{order_no}"


def consume_key(request_id: str) -> str:
    return f"consume:{request_id}"


def rule_key(merchant_id: str) -> str:
    """Changes of one merchant's rule queue here (versions are counted per merchant)."""
    return f"rule:{merchant_id}"
