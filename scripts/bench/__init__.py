"""The benchmark: ``python -m scripts.bench`` (``make bench``); the card system alone:
``python -m scripts.bench.card`` (``make bench-card``).

- ``cli``: flags, the phases of a run, the report's JSON (what ``python -m scripts.bench`` runs)
- ``load``: closed- and open-loop top-ups, shared by the real services and the bare chain
- ``bare``: the bare chain's do-nothing servers (``python -m scripts.bench.bare``)
- ``procs``: starting the bare chain, CPU and peak RSS of processes (summed over a group of replicas)
- ``replicas``: the services of one run, the recharge center as N replicas on one database
- ``measure``: a load between two idle points: CPU and database work per top-up; the levels
- ``compare``: ``--compare``, SQLite and PostgreSQL with 1 and N replicas side by side
- ``db``: each service's database counters and the work per top-up
- ``sentinel``: a backlog of stuck orders and the sentinel resolving it
- ``report``: the table, the goals and the plot
- ``card``: PreRecharge/s and ConfirmRecharge/s against the card system alone
- ``profiled``: one service under cProfile (``--profile SERVICE``)
"""
