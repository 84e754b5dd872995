"""Chaos runs and the invariant checker: ``python -m scripts.chaos`` (``make chaos``).

- ``cli``: flags, runs per (profile, seed), the table and the replay command
- ``run``: one run — set the faults, drive, clear, wait until quiet, observe, check
- ``profiles``: the fault profiles
- ``driver``: seeded order plans and the customers that carry them out
- ``observe``: what a quiet system shows through public RPCs and WeChat's trade bill
- ``invariants``: DESIGN.md §4's promises checked against an observation
- ``services``: the three services started with the chaos time scale, or running ones
- ``rpc``: the stubs and the retry helper every part shares
"""
