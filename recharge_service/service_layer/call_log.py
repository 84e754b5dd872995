"""Remote attempts folded into the flow's own commits (so a top-up costs a few transactions).

Every remote attempt is on the order's timeline (I6), and an attempt that changes something
elsewhere is on it *before* it leaves (its ``sent`` row is committed first). Neither needs a
transaction of its own:

- a ``sent`` row rides in the unit of work that precedes the call: the flow *announces* the call
  there (``announce``), and the retry helper then skips writing it for that attempt;
- an answer rides in the unit of work that records what the answer means: the retry helper leaves
  it *pending* here, and the next commit of the same flow writes it first (``UnitOfWork.commit``);
  what is still pending when the flow ends is written then (``folding``).

A flow is one task working on one order (a CreateRechargeOrder call, the credit after a payment,
a sentinel visit, an operator's action); ``folding`` marks it with a context variable, which
tasks started inside it inherit (so start separate flows with their own ``folding``). Outside any
flow the retry helper writes each row in its own transaction, as before.

What a crash can cost: an answer not yet committed (its call is on record as ``sent``, the
conservative reading), or an announced call that never left (on record as ``sent``, too).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from rc_common.clock import utc_now
from recharge_service.domain.timeline import REMOTE_CALL, TimelineEntry

#: Outcome of the row written before a call that changes something (its answer follows).
SENT = "sent"
#: Outcome of the row closing an announced call the flow never made.
NOT_SENT = "not_sent"


@dataclass
class CallLog:
    pending: list[TimelineEntry] = field(default_factory=list)
    announced: Counter[str] = field(default_factory=Counter)
    #: The order the announcements were made for.
    order_no: str = ""

    def take_pending(self) -> list[TimelineEntry]:
        taken, self.pending = self.pending, []
        return taken

    def put_back(self, entries: Iterable[TimelineEntry]) -> None:
        """A commit that carried ``entries`` failed: keep them for the next one."""
        self.pending[:0] = list(entries)

    def take_announced(self, method: str) -> bool:
        """True (once per announcement) when the flow already committed this call's sent row."""
        if self.announced[method] <= 0:
            return False
        self.announced[method] -= 1
        return True


_current: ContextVar[CallLog | None] = ContextVar("recharge_call_log", default=None)


def current() -> CallLog | None:
    return _current.get()


def sent_entry(order_no: str, method: str, at: datetime, actor: str, detail: str) -> TimelineEntry:
    return TimelineEntry(order_no, at, REMOTE_CALL, method=method, outcome=SENT, actor=actor, detail=detail)


@contextlib.asynccontextmanager
async def folding(
    flush: Callable[[], Awaitable[None]], *, announced: Iterable[str] = (), order_no: str = ""
) -> AsyncIterator[CallLog]:
    """Run a flow whose remote attempts ride in its commits; ``flush()`` (a commit of an empty unit
    of work) writes what is left at the end. ``announced``: calls whose first sent row an earlier
    flow already committed for this one (the payment's unit announces the confirm). A call that was
    announced but never attempted (the pre-recharge was refused, so no CreatePrepay) gets a
    ``not_sent`` row at the end, so its ``sent`` row does not stand alone."""
    log = CallLog(announced=Counter(announced), order_no=order_no)
    token = _current.set(log)
    try:
        yield log
    finally:
        try:
            for method, count in log.announced.items():
                if count > 0 and log.order_no:
                    log.pending.append(
                        TimelineEntry(
                            log.order_no,
                            utc_now(),
                            REMOTE_CALL,
                            method=method,
                            outcome=NOT_SENT,
                            detail="announced, never sent: the flow ended before this call",
                        )
                    )
            if log.pending:
                await flush()
        finally:
            _current.reset(token)
