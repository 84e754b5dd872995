"""Ports: what the use cases and the background workers need from outside, as Protocols and the
value types they trade in. Adapters implement them (SQL repositories, the notification client, the
key files) and ``bootstrap`` plugs them in; the service layer never imports an adapter.

Repository reads (``async``) answer at once from committed data. Writes (plain methods) are only
staged: they reach the database with the unit of work's commit, each guarded, so that one finding
its row no longer as it was read raises ``Conflict`` and the use case is re-run on fresh reads.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from wechat_mock.domain.merchants import Merchant
from wechat_mock.domain.messages import TemplateMessage
from wechat_mock.domain.notifications import Notification
from wechat_mock.domain.payments import PaymentOrder
from wechat_mock.domain.refunds import Refund

T = TypeVar("T")

#: A row added for a background worker: its key and when it is due.
Due = tuple[str, datetime]
#: The kinds of worker rows a commit reports: notifications to deliver, refunds to settle.
NOTIFICATIONS = "notifications"
REFUNDS = "refunds"


class Conflict(Exception):
    """A concurrent writer got there first (duplicate key or stale version); retry the use case."""


class Duplicate(Conflict):
    """The key is taken: an earlier or concurrent request inserted the same record."""


class Staged(Generic[T]):
    """What a staged write returns, readable once the unit of work has committed."""

    __slots__ = ("_ready", "_value")

    def __init__(self) -> None:
        self._ready = False
        self._value: T | None = None

    def set(self, value: T) -> None:
        self._value, self._ready = value, True

    @property
    def value(self) -> T:
        if not self._ready:
            raise RuntimeError("read a staged result before its unit of work committed")
        return self._value  # type: ignore[return-value]  # set() stored a T


class OrderRepository(Protocol):
    async def get(self, out_trade_no: str) -> PaymentOrder | None: ...
    async def get_many(self, out_trade_nos: Iterable[str]) -> dict[str, PaymentOrder]: ...
    async def paid_between(
        self, start: datetime, end: datetime, merchant: Merchant | None = None
    ) -> list[PaymentOrder]:
        """Orders paid within [start, end); given ``merchant``, only its own."""
        ...

    def add(self, order: PaymentOrder) -> None: ...
    def update(self, order: PaymentOrder) -> None: ...


class RefundRepository(Protocol):
    async def get(self, out_refund_no: str) -> Refund | None: ...
    async def get_with_committed_fen(
        self, out_refund_no: str, out_trade_no: str
    ) -> tuple[Refund | None, int]: ...
    async def due(self, now: datetime, limit: int) -> list[Refund]: ...
    async def next_due(self) -> datetime | None: ...
    async def created_between(
        self, start: datetime, end: datetime, merchant: Merchant | None = None
    ) -> list[Refund]:
        """Refunds accepted within [start, end); given ``merchant``, only its own."""
        ...

    def add(self, refund: Refund) -> None: ...
    def update(self, refund: Refund) -> None: ...


class NotificationRepository(Protocol):
    """Notifications and their delivery state: the notifier claims the due ones (a staged write,
    whose result is read after its commit) and records a batch of outcomes in one commit."""

    def add(self, *added: Notification) -> None: ...
    def claim_due(
        self, now: datetime, skip: Collection[str], limit: int, lease_until: datetime
    ) -> Staged[list[Notification]]: ...
    def record(self, attempted: Sequence[Notification]) -> None: ...
    async def next_due(self, skip: Collection[str]) -> datetime | None: ...
    async def list(self, out_trade_no: str = "") -> list[Notification]: ...


class MessageRepository(Protocol):
    def send(self, message: TemplateMessage) -> Staged[TemplateMessage]: ...
    async def list(
        self, openid: str = "", after: tuple[datetime, str] | None = None, limit: int | None = None
    ) -> list[TemplateMessage]:
        """Oldest first (sent_at, msgid); ``after`` = the position to continue after."""
        ...


class SigningKeys(Protocol):
    """The platform's keys, as the wire format uses them: the private key signs every attempt, the
    APIv3 key encrypts the resources. The service provider's live in <keys-dir>/platform/ (they
    serve partner mode); each direct-mode merchant has its own set in <keys-dir>/platform/direct/<mchid>/."""

    @property
    def private_key_pem(self) -> bytes: ...
    @property
    def public_key_id(self) -> str: ...
    @property
    def apiv3_key(self) -> str: ...


class DeliveryOutcome(enum.Enum):
    """How one delivery attempt ended, three-valued: only ACKNOWLEDGED ends the notification; the
    other two are failed attempts that WeChat's schedule retries."""

    ACKNOWLEDGED = "acknowledged"
    """Done: the merchant answered SUCCESS."""
    REFUSED = "refused"
    """Definitely refused: a live merchant (replica) answered, but not SUCCESS (FAIL). It is not
    offered to another target: the schedule retries it."""
    NO_ANSWER = "no_answer"
    """Unknown: no answer came (an RPC error, a timeout, connection refused, a lost attempt); the
    merchant may or may not have acted. Another target may be tried in the same attempt."""


@dataclass(frozen=True)
class DeliveryResult:
    outcome: DeliveryOutcome
    #: What happened, naming the target (kept as the notification's last error when it failed).
    detail: str
    #: The target that answered (or, for NO_ANSWER from one target, the one tried); '' for none.
    target: str = ""
    #: The details of the targets tried earlier in the same attempt that gave no answer.
    skipped: tuple[str, ...] = ()

    @property
    def acknowledged(self) -> bool:
        return self.outcome is DeliveryOutcome.ACKNOWLEDGED


class NotificationClient(Protocol):
    """Posts one attempt to the merchant. Only an acknowledgement is a delivery; another answer
    comes back REFUSED, an RPC error or a timeout NO_ANSWER (never raised)."""

    async def deliver(self, headers: Mapping[str, str], body: bytes, timeout_s: float) -> DeliveryResult: ...


class UrlNotificationClient(Protocol):
    """Posts one attempt to a notification's own ``notify_url`` (WeChat's HTTPS POST): a 2xx is
    an acknowledgement, another status REFUSED, no answer NO_ANSWER (never raised)."""

    async def deliver_to(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> DeliveryResult: ...
