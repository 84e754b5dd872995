"""The simulators' shared fault engine.

- ``engine``: rules, seeded decisions, per-(method, kind) counters.
- ``interceptor``: applies the transport faults (UNAVAILABLE, OUTAGE, DELAY, LATE_SUCCESS,
  LOST_RESPONSE) to any grpc.aio server; ``hold_if_delayed`` lets a service apply DELAY while
  it holds its own lock (the card system's row lock).
- ``servicer``: ``faults.v1.FaultControl`` and the ``--faults FILE`` profile loader.
"""

from rc_common.faults.engine import FaultEngine, FaultKind, FaultPlan, FaultRule
from rc_common.faults.interceptor import FaultInterceptor, hold_if_delayed

__all__ = [
    "FaultEngine",
    "FaultInterceptor",
    "FaultKind",
    "FaultPlan",
    "FaultRule",
    "hold_if_delayed",
]
