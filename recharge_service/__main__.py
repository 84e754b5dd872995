"""``python -m recharge_service``: serve the recharge center."""

from __future__ import annotations

from rc_common.launcher import run_service
from recharge_service import bootstrap
from recharge_service.migrations import SCHEMA
from recharge_service.settings import RechargeSettings

if __name__ == "__main__":
    run_service(
        "recharge_service",
        RechargeSettings,
        bootstrap.serve,
        "Recharge center: stored-value card top-ups paid with WeChat Pay; "
        "pre-recharge, fenced confirm/void, refunds only after a void, sentinel, operator tools.",
        schema=SCHEMA,
        database_url=lambda settings: settings.database.url,
        log_fields=lambda settings: {"node": bootstrap.node_name(settings)},
    )
