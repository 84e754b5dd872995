"""Sessions: 256-bit ids, idle timeout, absolute lifetime, a CSRF token each, a bounded store."""

from __future__ import annotations

import base64

from recharge_service.console.sessions import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(clock: Clock, **kw: float) -> SessionStore:
    return SessionStore(
        idle=kw.get("idle", 900.0),
        lifetime=kw.get("lifetime", 3600.0),
        clock=clock,
        max_sessions=int(kw.get("max", 100)),
    )


def test_a_session_id_is_256_random_bits_and_its_csrf_token_another_secret() -> None:
    sessions = store(Clock())
    a, b = sessions.create("alice"), sessions.create("alice")
    raw = base64.urlsafe_b64decode(a.session_id + "=")
    assert len(raw) == 32
    assert len({a.session_id, b.session_id, a.csrf_token, b.csrf_token}) == 4


def test_a_session_ends_after_the_idle_timeout_without_requests() -> None:
    clock = Clock()
    sessions = store(clock, idle=900)
    session = sessions.create("alice")
    clock.now += 899
    assert sessions.get(session.session_id) is session  # a request restarts the idle timer
    clock.now += 899
    assert sessions.get(session.session_id) is session
    clock.now += 900
    assert sessions.get(session.session_id) is None
    assert len(sessions) == 0


def test_a_busy_session_still_ends_at_its_absolute_lifetime() -> None:
    clock = Clock()
    sessions = store(clock, idle=900, lifetime=3600)
    session = sessions.create("alice")
    for _ in range(7):
        clock.now += 500
        assert sessions.get(session.session_id) is session
    clock.now += 100  # 3600 s after the login
    assert sessions.get(session.session_id) is None


def test_logout_and_removal_end_sessions() -> None:
    sessions = store(Clock())
    mine, other, again = sessions.create("alice"), sessions.create("bob"), sessions.create("alice")
    sessions.end(mine.session_id)
    assert sessions.get(mine.session_id) is None
    sessions.end_subject("alice")
    assert sessions.get(again.session_id) is None
    assert sessions.get(other.session_id) is other


def test_the_store_is_bounded_and_drops_the_least_recently_used() -> None:
    clock = Clock()
    sessions = store(clock, max=2)
    first, second = sessions.create("a"), sessions.create("b")
    clock.now += 1
    sessions.get(first.session_id)  # used: second is now the least recent
    third = sessions.create("c")
    assert sessions.get(second.session_id) is None
    assert sessions.get(first.session_id) is first and sessions.get(third.session_id) is third


def test_flash_messages_are_shown_once() -> None:
    session = store(Clock()).create("alice")
    session.flash("ok", "done")
    assert session.take_flashes() == [("ok", "done")]
    assert session.take_flashes() == []
