"""Use cases of the simulator and its background work.

- ``payments``, ``refunds``, ``bills``, ``messages``: the use cases (reads, then at most one write
  transaction each, re-run on a write conflict); ``commands``: their inputs; ``context``: what
  they need.
- ``unit_of_work``: reads at once, writes staged and committed together in one
  ``rc_common.db.Database.write``; nothing is written unless committed.
- ``wire``: WeChat's notification wire format (seal once, sign every attempt afresh).
- ``notifier`` / ``refund_settler``: background workers driven by due times in the database
  (``due_loop``), so a restart resumes pending deliveries and refunds.
"""
