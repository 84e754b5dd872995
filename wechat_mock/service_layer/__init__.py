"""Use cases of the simulator and its background work.

- ``payments``, ``refunds``, ``bills``, ``messages``: the use cases (reads, then at most one write
  transaction each, re-run on a write conflict); ``commands``: their inputs; ``context``: what
  they need.
- ``ports``: what they need from outside (repositories, signing keys, notification delivery) and
  the values those trade in; ``unit_of_work``: the abstract unit of work (reads at once, writes
  staged and committed together; nothing is written unless committed) and ``retrying``.
- ``wire``: WeChat's notification wire format (seal once, sign every attempt afresh).
- ``notifier`` / ``refund_settler``: background workers driven by due times in the database
  (``due_loop``), so a restart resumes pending deliveries and refunds.
"""
