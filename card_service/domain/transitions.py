"""The guard shared by the state machines: an illegal move is a bug, never a business answer."""

from __future__ import annotations


class IllegalTransition(Exception):
    """Raised when code tries a move the transition table does not allow."""

    def __init__(self, machine: str, source: str, target: str) -> None:
        super().__init__(f"{machine}: illegal transition {source} -> {target}")
        self.source = source
        self.target = target
