"""The notifier's memory of what is due when (``DueTimes``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wechat_mock.service_layer.due_times import DueTimes

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_first_is_the_earliest_due_time_of_the_keys_still_known() -> None:
    due = DueTimes()
    assert due.first() is None
    due.set("b", at(5))
    due.set("a", at(2))
    assert due.first() == at(2)
    due.discard(["a"])
    assert due.first() == at(5)
    assert "a" not in due and "b" in due


def test_setting_a_key_again_moves_it() -> None:
    due = DueTimes()
    due.set("a", at(1))
    due.set("a", at(9))
    due.set("b", at(4))
    assert due.first() == at(4)
    assert due.take_due(at(5)) == [(at(4), "b")]
    assert due.first() == at(9)


def test_take_due_forgets_and_returns_what_is_due_earliest_first() -> None:
    due = DueTimes()
    for key, seconds in (("c", 3), ("a", 1), ("z", 10), ("b", 2)):
        due.set(key, at(seconds))
    assert due.take_due(at(3)) == [(at(1), "a"), (at(2), "b"), (at(3), "c")]
    assert due.take_due(at(3)) == []
    assert len(due) == 1 and due.first() == at(10)
