"""Run one service under cProfile (for ``python -m scripts.bench --profile SERVICE``).

``python -m scripts.bench.profiled ARGS...`` runs ``python -m $PROFILE_MODULE ARGS...`` under
cProfile and, when the service returns (SIGTERM stops it gracefully), writes the stats to
$PROFILE_OUT. cProfile sees the event-loop thread only (aiosqlite's worker thread shows up as
time waiting for it); it slows the service down, so read it for *where* time goes, not how much.
"""

from __future__ import annotations

import cProfile
import os
import runpy
import sys


def main() -> None:
    module = os.environ["PROFILE_MODULE"]
    out = os.environ["PROFILE_OUT"]
    sys.argv = [module, *sys.argv[1:]]
    profiler = cProfile.Profile()
    try:
        profiler.runcall(runpy.run_module, module, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    finally:
        profiler.dump_stats(out)


if __name__ == "__main__":
    main()
