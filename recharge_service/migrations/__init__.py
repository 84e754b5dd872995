"""The recharge center's schema history (Alembic): ``python -m recharge_service migrate`` runs it.

``versions/`` holds one hand-written revision per change of ``adapters/orm.py``: 0001 is the schema
of the release before migrations (issue 12), so a database it made is adopted (see
``rc_common.migrations``).
"""

from __future__ import annotations

from pathlib import Path

from rc_common.migrations import Schema

SCHEMA = Schema("recharge_service", "the recharge center's database", Path(__file__).parent)
