"""The console's pages, one module per screen; ``ALL`` is every route table ``make_app`` adds."""

from __future__ import annotations

from recharge_service.console.pages import anomalies, approvals, health, login, orders, reconciliation

ALL = (
    login.routes,
    anomalies.routes,
    orders.routes,
    approvals.routes,
    reconciliation.routes,
    health.routes,
)
