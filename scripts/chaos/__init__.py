"""Chaos runs and the invariant checker: ``python -m scripts.chaos`` (``make chaos``).

- ``cli``: flags, runs per (profile, seed), the table and the replay command
- ``run``: one run — open the merchants, set the faults, drive, clear, wait until quiet, observe, check
- ``profiles``: the fault profiles
- ``driver``: seeded order plans spread over the merchants, and the customers that carry them out
- ``observe``: what a quiet system shows through public RPCs, each merchant's WeChat trade bill, and
  reads made as the wrong merchant
- ``observation``: that view as plain data (what the checker sees and reports)
- ``invariants``: DESIGN.md §4's promises (I1-I7) checked against an observation
- ``actors``: I7, one actor per order: no overlapping mutating calls of two replicas on one order
- ``isolation``: issue 12's promises between merchants (M1-M4)
- ``services``: the three services started with the chaos time scale (one recharge center or N
  replicas on PostgreSQL or SQLite), or running ones
- ``rpc``: the stubs and the retry helper every part shares
"""
