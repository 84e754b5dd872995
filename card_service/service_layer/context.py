"""What every use case is given: storage, locks, default limits, a clock and the lock hook."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar

from card_service.domain.rules import Limits, RechargeRule
from card_service.service_layer.locks import KeyedLocks, card_key
from card_service.service_layer.ports import UnitOfWorkFactory

if TYPE_CHECKING:
    from card_service.service_layer.export import ExportPage
from rc_common.clock import utc_now


async def no_hold() -> None:
    """Default lock hook: nothing to wait for."""


V = TypeVar("V")


class BoundedCache(Generic[V]):
    """A bounded memory by key; the least recently used entry is forgotten first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def remember(self, key: str, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)


class OwnerCache(BoundedCache[str]):
    """Bounded memory of which card an order number or consume request belongs to.

    The owner of a stored record never changes, so a hit saves a read; a miss reads the record.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        super().__init__(capacity)


class RuleCache(BoundedCache[RechargeRule]):
    """Bounded memory of each merchant's recharge rule in force (keyed by merchant id).

    Only this process changes rules and it replaces the entry on every change, so a hit is
    current; a miss (a merchant not seen lately) reads the merchant's latest version.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        super().__init__(capacity)


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
    #: Applied to each page of a journal export before it leaves; tests plant a fault here
    #: (``JOURNAL_EXTRA_ENTRY``), production leaves it the identity.
    alter_export: Callable[[ExportPage], ExportPage] = field(default=lambda page: page)  # unaltered
    #: Each merchant's recharge rule in force, cached after a read and replaced by every change.
    rules: RuleCache = field(default_factory=RuleCache)

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
