"""The guard shared by the state machines (one definition for the three services, in rc_common)."""

from __future__ import annotations

from rc_common.transitions import IllegalTransition

__all__ = ["IllegalTransition"]
