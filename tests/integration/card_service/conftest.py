"""Fixtures: the service layer over a temp SQLite file, and a real ``python -m card_service``."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from card_service.adapters.tables import metadata
from card_service.adapters.unit_of_work import create_schema, uow_factory
from card_service.domain import commands
from card_service.domain.rules import Limits
from card_service.service_layer import cards
from card_service.service_layer.context import CardContext
from protos.card.v1 import card_pb2, card_pb2_grpc
from protos.faults.v1 import faults_pb2, faults_pb2_grpc
from rc_common.channels import aio_channel
from rc_common.db import Database
from scripts.stack import ServiceProcess
from tests import auth
from tests.auth import write_key_file
from tests.waiting import eventually

DEFAULTS = Limits(min_pay_fen=100, max_pay_fen=5_000_000, balance_cap_fen=20_000_000)
#: The merchant the tests' cards, rules and pre-recharges belong to unless a test names another.
MERCHANT = "m-test"


@pytest.fixture
def db_backend() -> str:
    """SQLite by default; modules where concurrency matters override this to run on both."""
    return "sqlite"


@pytest.fixture
async def db(tmp_path: Path, db_backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    """A fresh SQLite file, or a fresh database in the session's PostgreSQL server; or, when
    CARD_TEST_DB_URL names a PostgreSQL database, that one with the card tables created anew."""
    if db_backend == "postgresql":
        url = request.getfixturevalue("postgres").createdb(f"card_{uuid.uuid4().hex[:12]}")
    else:
        url = os.environ.get("CARD_TEST_DB_URL") or f"sqlite+aiosqlite:///{tmp_path / 'card.db'}"
    database = Database(url)
    if not database.is_sqlite:
        async with database.engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
    await create_schema(database)
    yield database
    await database.dispose()


@pytest.fixture
def ctx(db: Database) -> CardContext:
    return CardContext(uow_factory(db), DEFAULTS)


async def open_card(ctx: CardContext, card_no: str, merchant_id: str = MERCHANT) -> str:
    await cards.open_card(ctx, commands.OpenCard(card_no, merchant_id))
    return card_no


def start_card_service(workdir: Path, *args: str) -> ServiceProcess:
    service = ServiceProcess(
        "card",
        "card_service",
        [
            *("--db", f"sqlite+aiosqlite:///{workdir / 'card.db'}"),
            *("--auth-key-file", write_key_file(workdir)),
            *args,
        ],
        workdir / "card.log",
    )
    try:
        service.migrate()
        service.start("127.0.0.1:0")
    except BaseException:
        service.stop()
        raise
    return service


@pytest.fixture(scope="module")
def card_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One real card system process per test module."""
    service = start_card_service(tmp_path_factory.mktemp("card"))
    try:
        yield service
    finally:
        service.stop()


class Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.system = card_pb2_grpc.CardSystemStub(channel)
        self.admin = card_pb2_grpc.CardAdminStub(channel)
        self.faults = faults_pb2_grpc.FaultControlStub(channel)

    async def set_faults(self, *rules: faults_pb2.FaultRule, seed: int = 1) -> None:
        await self.faults.SetFaults(faults_pb2.FaultPlan(seed=seed, rules=list(rules)), timeout=5)

    async def fault_counts(self) -> dict[tuple[str, int], int]:
        stats = await self.faults.GetFaultStats(faults_pb2.GetFaultStatsRequest(), timeout=5)
        return {(c.method, c.kind): c.count for c in stats.counts}

    async def open_card(self, card_no: str, merchant_id: str = MERCHANT) -> str:
        request = card_pb2.OpenCardRequest(card_no=card_no, merchant_id=merchant_id)
        await self.admin.OpenCard(request, timeout=5)
        return card_no

    async def balance(self, card_no: str) -> int:
        card = await self.system.GetCard(card_pb2.GetCardRequest(card_no=card_no), timeout=5)
        return int(card.balance_fen)


@pytest.fixture
async def stubs(card_server: ServiceProcess) -> AsyncIterator[Stubs]:
    async with aio_channel(card_server.address, auth.client()) as channel:
        client = Stubs(channel)
        try:
            yield client
        finally:
            await client.faults.ClearFaults(faults_pb2.ClearFaultsRequest(), timeout=5)


def log_events(service: ServiceProcess, event: str) -> list[dict[str, object]]:
    found = []
    for line in service.log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            found.append(record)
    return found


async def wait_for_log(service: ServiceProcess, event: str, count: int = 1, **fields: object) -> None:
    """Waits (bounded) until the server logged ``event`` with ``fields`` at least ``count`` times
    in all (the log is shared by a module's tests: count from ``len(log_events(...))`` before)."""
    what = f"{service.name} logging {event} {fields} x{count}"

    def logged() -> bool:
        matching = [e for e in log_events(service, event) if all(e.get(k) == v for k, v in fields.items())]
        return len(matching) >= count

    try:
        await eventually(logged, within=20, interval=0.05, what=what)
    except AssertionError as failure:
        raise AssertionError(f"{failure}:\n{service.tail()}") from None
