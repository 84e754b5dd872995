"""The WeChat Pay simulator's schema history (Alembic): ``python -m wechat_mock migrate`` runs it.

``versions/`` holds one hand-written revision per change of ``adapters/tables.py``; 0001 is the
schema of the release before migrations, so a database it made is adopted (see
``rc_common.migrations``).
"""

from __future__ import annotations

from pathlib import Path

from rc_common.migrations import Schema

SCHEMA = Schema("wechat_mock", "the simulator's database", Path(__file__).parent)
