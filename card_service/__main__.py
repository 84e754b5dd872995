"""``python -m card_service``: serve the card system simulator."""

from __future__ import annotations

from card_service import bootstrap
from card_service.migrations import SCHEMA
from card_service.settings import CardSettings
from rc_common.launcher import run_service

if __name__ == "__main__":
    run_service(
        "card_service",
        CardSettings,
        bootstrap.serve,
        "Card system simulator: stored-value ledger with pre-recharge, confirm, void "
        "and consume, plus FaultControl for chaos runs. Every card belongs to one merchant; "
        "each merchant has its own versioned bonus rule and limits (a limit left 0, or no rule "
        "at all, means the defaults below).",
        schema=SCHEMA,
        database_url=lambda settings: settings.db,
    )
