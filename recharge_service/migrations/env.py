"""Alembic's entry point for the recharge center's migrations (see ``rc_common.migrations``)."""

from rc_common.migrations import run_env

run_env()
