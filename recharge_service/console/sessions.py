"""Operators' sessions, kept in this process's memory.

A session id is 256 random bits (``secrets``), sent only in the session cookie (HttpOnly,
SameSite=Strict, Secure) and never logged. A session ends ``idle`` seconds after its last request
or ``lifetime`` seconds after the login, whichever comes first, and at logout. Each session has its
own CSRF token, which every form carries back (``csrf.py``). At most ``max_sessions`` are kept:
a login beyond that ends the one used least recently.

The clock is injected (``time.monotonic`` by default) so expiry is tested without waiting.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

SESSION_ID_BYTES = 32  # 256 bits
CSRF_TOKEN_BYTES = 32


@dataclass
class Session:
    session_id: str = field(repr=False)
    subject: str
    csrf_token: str = field(repr=False)
    created: float
    last_seen: float
    #: One-time messages shown on the next page (the result of an action, after its redirect).
    flashes: list[tuple[str, str]] = field(default_factory=list)

    def flash(self, kind: str, text: str) -> None:
        self.flashes.append((kind, text))

    def take_flashes(self) -> list[tuple[str, str]]:
        taken, self.flashes = self.flashes, []
        return taken


class SessionStore:
    def __init__(
        self,
        *,
        idle: float,
        lifetime: float,
        max_sessions: int = 10000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle = idle
        self._lifetime = lifetime
        self._max = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently used first

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, subject: str) -> Session:
        """A new session for ``subject`` (after a successful login)."""
        self._drop_expired()
        while len(self._sessions) >= self._max:
            self._sessions.popitem(last=False)
        now = self._clock()
        session = Session(
            session_id=secrets.token_urlsafe(SESSION_ID_BYTES),
            subject=subject,
            csrf_token=secrets.token_urlsafe(CSRF_TOKEN_BYTES),
            created=now,
            last_seen=now,
        )
        self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        """The live session with this id, its idle timer restarted; None when there is none (an
        expired one is ended here)."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if self._expired(session, now):
            del self._sessions[session_id]
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def end_subject(self, subject: str) -> None:
        """End every session of ``subject`` (an account removed)."""
        for session_id in [s.session_id for s in self._sessions.values() if s.subject == subject]:
            del self._sessions[session_id]

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen >= self._idle or now - session.created >= self._lifetime

    def _drop_expired(self) -> None:
        now = self._clock()
        for session_id in [k for k, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[session_id]
