"""Shared fixtures: the whole stack as real processes on 127.0.0.1 ports chosen at start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.stack import Stack, build_stack, start_stack
from tests.postgres import PostgresServer, start_postgres


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The three services with default settings, shared by read-mostly tests."""
    workdir: Path = tmp_path_factory.mktemp("stack")
    running = start_stack(build_stack(workdir))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (tests create their own databases in it)."""
    try:
        server = start_postgres()
    except FileNotFoundError as missing:  # only on machines without PostgreSQL 15 binaries
        pytest.skip(f"PostgreSQL not installed: {missing}")
    try:
        yield server
    finally:
        server.stop()
