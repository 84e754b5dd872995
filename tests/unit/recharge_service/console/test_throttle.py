"""Login throttling per (name, peer): a few failures, then a wait that doubles; a success clears it."""

from __future__ import annotations

from recharge_service.console.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def throttle(clock: Clock) -> LoginThrottle:
    return LoginThrottle(max_failures=3, lockout=60, lockout_max=200, clock=clock)


def test_the_pair_waits_after_max_failures_and_only_that_pair() -> None:
    clock = Clock()
    gate = throttle(clock)
    for _ in range(2):
        gate.failed("alice", "10.0.0.1")
        assert gate.wait_seconds("alice", "10.0.0.1") == 0
    gate.failed("alice", "10.0.0.1")
    assert gate.wait_seconds("alice", "10.0.0.1") == 60
    assert gate.wait_seconds("alice", "10.0.0.2") == 0  # another peer
    assert gate.wait_seconds("bob", "10.0.0.1") == 0  # another account
    clock.now += 45
    assert gate.wait_seconds("alice", "10.0.0.1") == 15
    clock.now += 15
    assert gate.wait_seconds("alice", "10.0.0.1") == 0


def test_each_lockout_without_a_success_doubles_the_wait_up_to_the_cap() -> None:
    clock = Clock()
    gate = throttle(clock)
    waits = []
    for _ in range(4):
        for _ in range(3):
            gate.failed("alice", "p")
        waits.append(gate.wait_seconds("alice", "p"))
        clock.now += waits[-1]
    assert waits == [60, 120, 200, 200]


def test_a_success_clears_the_pair() -> None:
    clock = Clock()
    gate = throttle(clock)
    gate.failed("alice", "p")
    gate.failed("alice", "p")
    gate.succeeded("alice", "p")
    gate.failed("alice", "p")
    gate.failed("alice", "p")
    assert gate.wait_seconds("alice", "p") == 0


def test_unknown_names_are_throttled_like_known_ones_and_the_table_stays_bounded() -> None:
    clock = Clock()
    gate = LoginThrottle(max_failures=1, lockout=60, lockout_max=60, max_pairs=10, clock=clock)
    for n in range(50):
        gate.failed(f"nobody-{n}", "p")
    assert gate.wait_seconds("nobody-49", "p") == 60
    assert gate.wait_seconds("nobody-0", "p") == 0  # dropped: the oldest went first
