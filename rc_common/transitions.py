"""The guard shared by every state machine of the three services: an illegal move is a bug in the
code that tried it, never a business answer (those are refusals)."""

from __future__ import annotations


class IllegalTransition(Exception):
    """Code tried a move its transition table (or rule) does not allow."""

    def __init__(self, machine: str, source: str, target: str, why: str = "") -> None:
        super().__init__(f"{machine}: illegal transition {source} -> {target}{why}")
        self.machine = machine
        self.source = source
        self.target = target
