"""What every use case is given: storage, locks, default limits, a clock and the lock hook."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from card_service.domain.rules import Limits, RechargeRule
from card_service.service_layer.locks import KeyedLocks, card_key
from card_service.service_layer.ports import UnitOfWorkFactory
from rc_common.clock import utc_now


async def no_hold() -> None:
    """Default lock hook: nothing to wait for."""


class OwnerCache:
    """Bounded memory of which card an order number or consume request belongs to.

    The owner of a stored record never changes, so a hit saves a read; a miss reads the record.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._owners: OrderedDict[str, str] = OrderedDict()

    def get(self, key: str) -> str | None:
        owner = self._owners.get(key)
        if owner is not None:
            self._owners.move_to_end(key)
        return owner

    def remember(self, key: str, owner: str) -> None:
        self._owners[key] = owner
        self._owners.move_to_end(key)
        while len(self._owners) > self._capacity:
            self._owners.popitem(last=False)


@dataclass
class CardContext:
    uow: UnitOfWorkFactory
    #: The limits used where the current rule says 0 (from settings).
    defaults: Limits
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    clock: Callable[[], datetime] = utc_now
    owners: OwnerCache = field(default_factory=OwnerCache)
    #: Awaited right after the card's lock is taken and before the transaction opens; the
    #: server plugs the fault engine's lock-wait (DELAY) in here.
    after_lock: Callable[[], Awaitable[None]] = no_hold
    #: The recharge rule in force, cached after the first read and replaced by every change.
    rule: RechargeRule | None = None

    @contextlib.asynccontextmanager
    async def card_lock(self, card_no: str) -> AsyncIterator[None]:
        """The card's lock, then the lock hook. A tombstone (no card) takes no card lock."""
        if not card_no:
            await self.after_lock()
            yield
            return
        async with self.locks.hold(card_key(card_no)):
            await self.after_lock()
            yield
