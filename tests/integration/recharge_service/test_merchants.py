"""Merchants on a real SQLite database: the SQL directory (versions, optimistic concurrency, the
audit trail, caching), the RechargeOps merchant RPCs on a real gRPC server (127.0.0.1:0) and the
operator CLI's merchant commands against that server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import Connection, func, select

from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from rc_common.auth import bearer_metadata
from rc_common.channels import aio_channel
from rc_common.db import Database
from rc_common.grpc_status import error_field, error_info
from rc_common.server import create_server
from recharge_service.adapters.merchants import SqlMerchantDirectory, config_from_json
from recharge_service.adapters.orm import merchant_versions, merchants
from recharge_service.adapters.unit_of_work import uow_factory
from recharge_service.bootstrap import create_schema
from recharge_service.domain.merchant import MerchantConfig, WechatAccount, WechatMode
from recharge_service.domain.order import Channel
from recharge_service.entrypoints import ops, ops_cli
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.merchants import StaleMerchant
from recharge_service.service_layer.sentinel import Sentinel, SentinelPolicy
from recharge_service.settings import SentinelSettings
from tests import auth
from tests.integration.recharge_service.fakes import Clock, FakeCard, FakePayments

T0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
TTL = 30.0


def shop(**changes: object) -> MerchantConfig:
    config = MerchantConfig(
        merchant_id="shop-1",
        display_name="Shop One",
        channels=frozenset({Channel.POS, Channel.OFFICIAL_ACCOUNT}),
        callbacks={Channel.POS: "pos.internal:7000"},
        order_expiry=timedelta(minutes=20),
        wechat=WechatAccount(WechatMode.PARTNER, "1900000201", "wx1111111111111111"),
    )
    return replace(config, **changes)  # type: ignore[arg-type]


@dataclass
class Monotonic:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


async def rows(db: Database, merchant_id: str) -> tuple[int, int]:
    """(the version in ``merchants``, 0 if none; how many rows ``merchant_versions`` has)"""

    def query(conn: Connection) -> tuple[int, int]:
        current = conn.execute(select(merchants.c.version).where(merchants.c.merchant_id == merchant_id))
        versions = conn.execute(
            select(func.count()).where(merchant_versions.c.merchant_id == merchant_id)
        ).scalar_one()
        return current.scalar() or 0, versions

    return await db.read(query, snapshot=True)


# -- the SQL directory -------------------------------------------------------------------------


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


@pytest.fixture
def directory(db: Database, monotonic: Monotonic) -> SqlMerchantDirectory:
    return SqlMerchantDirectory(db, TTL, monotonic=monotonic)


async def test_a_change_is_a_new_version_and_old_versions_stay_as_they_were(
    db: Database, directory: SqlMerchantDirectory
) -> None:
    v1 = await directory.put(shop(), 0, "alice", "onboarding", T0)
    assert (v1.version, v1.updated_at) == (1, T0)
    v2 = await directory.put(
        replace(v1, order_expiry=timedelta(minutes=5), display_name="Shop 1"),
        1,
        "bob",
        "ticket 42",
        T0 + timedelta(hours=1),
    )
    assert (v2.version, v2.updated_at, v2.order_expiry) == (2, T0 + timedelta(hours=1), timedelta(minutes=5))
    assert await rows(db, "shop-1") == (2, 2)

    # an order created with v1 keeps v1 — also through a directory with nothing cached
    fresh = SqlMerchantDirectory(db, TTL)
    for reader in (directory, fresh):
        old = await reader.version("shop-1", 1)
        assert old == replace(shop(), version=1, updated_at=T0)
        assert old is not None and old.order_expiry == timedelta(minutes=20)
        assert await reader.version("shop-1", 2) == v2
        assert await reader.version("shop-1", 3) is None
        assert await reader.current("shop-1") == v2

    history = await fresh.history("shop-1")
    assert [(c.config.version, c.operator, c.reason, c.at) for c in history] == [
        (1, "alice", "onboarding", T0),
        (2, "bob", "ticket 42", T0 + timedelta(hours=1)),
    ]
    assert [c.config for c in history] == [replace(shop(), version=1, updated_at=T0), v2]
    assert await fresh.history("nobody") == []
    assert await fresh.current("nobody") is None


async def test_a_stale_expected_version_is_refused_and_nothing_is_written(
    db: Database, directory: SqlMerchantDirectory
) -> None:
    with pytest.raises(StaleMerchant):  # changing a merchant that does not exist
        await directory.put(shop(), 1, "alice", "oops", T0)
    assert await rows(db, "shop-1") == (0, 0)
    await directory.put(shop(), 0, "alice", "onboarding", T0)
    await directory.put(shop(display_name="Two"), 1, "alice", "rename", T0)

    for expected in (0, 1, 3):  # creating again, a version already superseded, one from the future
        with pytest.raises(StaleMerchant) as stale:
            await directory.put(shop(display_name="Lost"), expected, "carol", "late", T0)
        assert stale.value.reason == "MERCHANT_VERSION_CHANGED" and stale.value.current == 2
    assert await rows(db, "shop-1") == (2, 2)
    current = await SqlMerchantDirectory(db, TTL).current("shop-1")
    assert current is not None and current.display_name == "Two"
    assert [c.reason for c in await directory.history("shop-1")] == ["onboarding", "rename"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def two_nodes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Database, Database]]:
    """Two processes' databases on one store (on PostgreSQL the writes really overlap)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").createdb(f"recharge_{uuid.uuid4().hex[:12]}")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first, second = Database(url), Database(url)
    await create_schema(first)
    yield first, second
    await first.dispose()
    await second.dispose()


async def test_of_concurrent_puts_based_on_the_same_version_one_wins(
    two_nodes: tuple[Database, Database],
) -> None:
    nodes = [SqlMerchantDirectory(db, TTL) for db in two_nodes]

    async def race(expected: int) -> MerchantConfig:
        results = await asyncio.gather(
            *(
                nodes[i % 2].put(shop(display_name=f"try {i}"), expected, f"op-{i}", "race", T0)
                for i in range(8)
            ),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, MerchantConfig)]
        assert len(won) == 1, results
        assert all(isinstance(r, StaleMerchant) for r in results if r is not won[0]), results
        return won[0]

    created = await race(0)  # concurrent creations: the INSERT of all but one fails
    changed = await race(1)  # concurrent changes: UPDATE … WHERE version = 1 matches once
    assert (created.version, changed.version) == (1, 2)
    assert await rows(two_nodes[0], "shop-1") == (2, 2)
    history = await nodes[1].history("shop-1")
    assert [c.config for c in history] == [created, changed]
    assert [c.operator for c in history] == [
        f"op-{created.display_name[4:]}",
        f"op-{changed.display_name[4:]}",
    ]


async def test_current_is_cached_for_the_ttl_and_refreshed_by_this_process_put(
    db: Database, directory: SqlMerchantDirectory, monotonic: Monotonic
) -> None:
    other_clock = Monotonic()
    other_node = SqlMerchantDirectory(db, TTL, monotonic=other_clock)
    await other_node.put(shop(), 0, "alice", "onboarding", T0)

    first = await directory.current("shop-1")
    assert first is not None and first.version == 1
    reads = db.stats.reads
    monotonic.now += TTL - 1
    assert await directory.current("shop-1") == first
    assert db.stats.reads == reads  # served from the cache

    await other_node.put(shop(display_name="Renamed"), 1, "bob", "rename", T0)
    assert await directory.current("shop-1") == first  # another node's change: not yet seen
    monotonic.now += 1  # the TTL has passed
    seen = await directory.current("shop-1")
    assert seen is not None and (seen.version, seen.display_name) == (2, "Renamed")
    assert db.stats.reads == reads + 1

    # this process's own change is seen at once (no read), the other node's cache is still warm
    mine = await directory.put(shop(display_name="Mine"), 2, "carol", "again", T0)
    reads = db.stats.reads
    assert await directory.current("shop-1") == mine
    assert db.stats.reads == reads
    assert (await other_node.current("shop-1")) == replace(seen, updated_at=T0)  # v2, cached
    other_clock.now += TTL
    renewed = await other_node.current("shop-1")
    assert renewed is not None and renewed.version == 3


async def test_versions_are_cached_for_good_and_misses_not_at_all(
    db: Database, directory: SqlMerchantDirectory, monotonic: Monotonic
) -> None:
    await directory.put(shop(), 0, "alice", "onboarding", T0)
    fresh = SqlMerchantDirectory(db, TTL, monotonic=monotonic)
    assert await fresh.version("shop-1", 2) is None
    reads = db.stats.reads
    v1 = await fresh.version("shop-1", 1)
    monotonic.now += 365 * 86_400.0
    assert await fresh.version("shop-1", 1) is v1
    assert db.stats.reads == reads + 1
    await directory.put(shop(), 1, "alice", "again", T0)
    assert await fresh.version("shop-1", 2) is not None  # a miss was not remembered


async def test_all_lists_every_merchant_by_id(directory: SqlMerchantDirectory) -> None:
    await directory.put(shop(merchant_id="zeta"), 0, "alice", "new", T0)
    await directory.put(shop(merchant_id="alpha"), 0, "alice", "new", T0)
    await directory.put(shop(merchant_id="alpha", disabled=True), 1, "alice", "off", T0)
    found = await directory.all()
    assert [(m.merchant_id, m.version, m.disabled) for m in found] == [("alpha", 2, True), ("zeta", 1, False)]


async def test_the_stored_json_is_the_codec_s_in_both_tables(
    db: Database, directory: SqlMerchantDirectory
) -> None:
    written = await directory.put(shop(), 0, "alice", "onboarding", T0)

    def query(conn: Connection) -> tuple[str, str]:
        current = conn.execute(select(merchants.c.config)).scalar_one()
        version = conn.execute(select(merchant_versions.c.config)).scalar_one()
        return current, version

    current, version = await db.read(query)
    assert current == version
    assert config_from_json(current) == written
    assert json.loads(current)["channels"] == ["OFFICIAL_ACCOUNT", "POS"]


# -- the RPCs ----------------------------------------------------------------------------------


@dataclass
class Served:
    address: str
    ops: recharge_pb2_grpc.RechargeOpsStub
    clock: Clock
    db: Database
    #: Where ``cli`` writes the token of the operator it acts as.
    token_dir: Path


@pytest.fixture
async def served(db: Database, tmp_path: Path) -> AsyncIterator[Served]:
    clock = Clock()
    deps = Deps(
        uow=uow_factory(db),
        card=FakeCard(),
        payments=FakePayments(),
        merchants=SqlMerchantDirectory(db, TTL),
        clock=clock,
    )
    sentinel = Sentinel(deps, SentinelPolicy.from_settings(SentinelSettings(), "node-test"))
    server = create_server("127.0.0.1:0", [ops.registrar(deps, sentinel)], security=auth.security())
    await server.start()
    try:
        # The operator on every change is the token's subject: "alice" unless a call says otherwise.
        async with aio_channel(server.address, auth.client(subject="alice")) as channel:
            yield Served(server.address, recharge_pb2_grpc.RechargeOpsStub(channel), clock, db, tmp_path)
    finally:
        await server.stop(0)
        await deps.background.close(5.0)


def merchant_message(**changes: object) -> recharge_pb2.Merchant:
    values: dict[str, object] = {
        "merchant_id": "shop-1",
        "display_name": "Shop One",
        "channels": [recharge_pb2.CHANNEL_POS],
        "callbacks": [recharge_pb2.CallbackTarget(channel=recharge_pb2.CHANNEL_POS, target="pos:7000")],
        "wechat": recharge_pb2.WechatPayConfig(mode=recharge_pb2.WECHAT_MODE_PARTNER, mchid="1900000201"),
    }
    values.update(changes)
    return recharge_pb2.Merchant(**values)  # type: ignore[arg-type]


def put(
    message: recharge_pb2.Merchant, expected: int, reason: str = "why"
) -> recharge_pb2.PutMerchantRequest:
    return recharge_pb2.PutMerchantRequest(merchant=message, expected_version=expected, reason=reason)


def acting_as(subject: str) -> tuple[tuple[str, str], ...]:
    """Call metadata: the call is made by operator ``subject`` (their token)."""
    return bearer_metadata(auth.token(subject=subject))


async def test_put_get_and_list_merchants_over_grpc(served: Served) -> None:
    created = await served.ops.PutMerchant(put(merchant_message(), 0, reason="onboarding"))
    assert created.version == 1 and created.order_expiry_seconds == 30 * 60  # 0 = the default
    assert created.updated_at.ToDatetime(tzinfo=UTC) == served.clock.now
    served.clock.advance(timedelta(hours=1))
    changed = await served.ops.PutMerchant(
        put(
            merchant_message(display_name="Shop 1", order_expiry_seconds=600, version=99),
            1,
            "ticket 7",
        ),
        metadata=acting_as("bob"),
    )
    assert (changed.version, changed.display_name, changed.order_expiry_seconds) == (2, "Shop 1", 600)

    got = await served.ops.GetMerchant(recharge_pb2.GetMerchantRequest(merchant_id="shop-1"))
    assert got.merchant == changed
    assert [(h.version, h.operator, h.reason) for h in got.history] == [
        (1, "alice", "onboarding"),
        (2, "bob", "ticket 7"),
    ]
    assert got.history[1].at.ToDatetime(tzinfo=UTC) == served.clock.now
    first = json.loads(got.history[0].config_json)
    assert (first["version"], first["display_name"], first["order_expiry"]) == (1, "Shop One", 1800)

    await served.ops.PutMerchant(put(merchant_message(merchant_id="another"), 0))
    listed = await served.ops.ListMerchants(recharge_pb2.ListMerchantsRequest())
    assert [(m.merchant_id, m.version) for m in listed.merchants] == [("another", 1), ("shop-1", 2)]


async def test_a_stale_put_is_aborted_and_writes_nothing(served: Served) -> None:
    await served.ops.PutMerchant(put(merchant_message(), 0))
    await served.ops.PutMerchant(put(merchant_message(display_name="Two"), 1))
    for expected in (0, 1):
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await served.ops.PutMerchant(put(merchant_message(display_name="Lost"), expected))
        assert failed.value.code() == grpc.StatusCode.ABORTED
        info = error_info(failed.value)
        assert info is not None and info.reason == "MERCHANT_VERSION_CHANGED"
        assert info.metadata["current_version"] == "2"
    assert await rows(served.db, "shop-1") == (2, 2)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (put(merchant_message(display_name=""), 0), "merchant.display_name"),
        (put(merchant_message(merchant_id="no spaces please"), 0), "merchant.merchant_id"),
        (put(merchant_message(channels=[recharge_pb2.CHANNEL_POS, 42]), 0), "merchant.channels"),
        (
            put(merchant_message(wechat=recharge_pb2.WechatPayConfig(mchid="1900000201")), 0),
            "merchant.wechat.mode",
        ),
        (put(merchant_message(), 0, reason=" "), "reason"),
        (put(merchant_message(), -1), "expected_version"),
    ],
)
async def test_bad_puts_are_invalid_arguments_naming_the_field(
    served: Served, request_: recharge_pb2.PutMerchantRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await served.ops.PutMerchant(request_)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_field(failed.value) == field
    listed = await served.ops.ListMerchants(recharge_pb2.ListMerchantsRequest())
    assert list(listed.merchants) == []


async def test_get_merchant_of_an_unknown_or_malformed_id(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await served.ops.GetMerchant(recharge_pb2.GetMerchantRequest(merchant_id="nobody"))
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await served.ops.GetMerchant(recharge_pb2.GetMerchantRequest(merchant_id="bad id!"))
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_field(failed.value) == "merchant_id"


# -- the CLI -----------------------------------------------------------------------------------


async def cli(served: Served, *argv: str, subject: str = "alice") -> int:
    """The operator CLI (a blocking gRPC client) in a thread, against the served RechargeOps, with
    the token of operator ``subject`` in a file (``--token-file``)."""
    token_file = auth.write_token_file(served.token_dir, subject=subject)
    argv = ("--target", served.address, "--token-file", token_file, *argv)
    return await asyncio.to_thread(ops_cli.main, list(argv))


async def test_the_cli_creates_changes_and_shows_a_merchant(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await cli(
        served,
        *("merchant-put", "--merchant-id", "shop-1", "--display-name", "Shop One"),
        *("--channels", "pos,official-account", "--callback", "POS=pos.internal:7000"),
        *("--order-expiry", "900", "--wechat-mchid", "1900000201", "--wechat-appid", "wx1111111111111111"),
        *("--max-open-orders", "50", "--reason", "onboarding"),
        subject="alice",
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "created merchant shop-1: version 1" in out

    served.clock.advance(timedelta(minutes=5))
    code = await cli(
        served,
        *("merchant-put", "--merchant-id", "shop-1", "--display-name", "Shop 1", "--disabled"),
        *("--callback", "OFFICIAL_ACCOUNT=oa.internal:7001", "--reason", "ticket 9"),
        subject="bob",
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "changed merchant shop-1: version 2" in out

    got = await served.ops.GetMerchant(recharge_pb2.GetMerchantRequest(merchant_id="shop-1"))
    m = got.merchant
    assert (m.version, m.display_name, m.disabled) == (2, "Shop 1", True)
    # everything not given was kept
    assert sorted(m.channels) == [recharge_pb2.CHANNEL_OFFICIAL_ACCOUNT, recharge_pb2.CHANNEL_POS]
    assert {(c.channel, c.target) for c in m.callbacks} == {
        (recharge_pb2.CHANNEL_POS, "pos.internal:7000"),
        (recharge_pb2.CHANNEL_OFFICIAL_ACCOUNT, "oa.internal:7001"),
    }
    assert (m.order_expiry_seconds, m.max_open_orders) == (900, 50)
    assert (m.wechat.mode, m.wechat.mchid, m.wechat.appid) == (
        recharge_pb2.WECHAT_MODE_PARTNER,
        "1900000201",
        "wx1111111111111111",
    )

    assert await cli(served, "merchant-get", "shop-1") == 0
    out = capsys.readouterr().out
    assert "display_name     Shop 1" in out and "disabled         yes" in out
    lines = out.splitlines()
    history = lines[lines.index("history") + 1 :]
    assert history[0].split() == ["VERSION", "AT", "(UTC+8)", "OPERATOR", "CHANGED", "REASON"]
    assert history[2].startswith("1 ") and "alice" in history[2] and history[2].endswith("onboarding")
    assert history[3].startswith("2 ") and "bob" in history[3] and history[3].endswith("ticket 9")
    assert "created" in history[2]
    assert "callbacks.OFFICIAL_ACCOUNT, disabled, display_n…" in history[3]  # cut at 48

    assert await cli(served, "merchant-list") == 0
    out = capsys.readouterr().out
    assert "shop-1" in out and "DISABLED" in out and "1 merchants" in out


async def test_the_cli_reports_refusals_with_exit_status_1(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    await served.ops.PutMerchant(put(merchant_message(), 0))
    await served.ops.PutMerchant(put(merchant_message(display_name="Two"), 1))
    code = await cli(
        served,
        *("merchant-put", "--merchant-id", "shop-1", "--display-name", "Late", "--expected-version", "1"),
        *("--reason", "stale"),
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "ABORTED" in err and "MERCHANT_VERSION_CHANGED" in err
    assert await rows(served.db, "shop-1") == (2, 2)

    # a new merchant without what it needs: the server names the field
    code = await cli(
        served,
        "merchant-put",
        "--merchant-id",
        "new-1",
        "--display-name",
        "New",
        "--reason",
        "r",
    )
    err = capsys.readouterr().err
    assert code == 1 and "INVALID_ARGUMENT" in err and "merchant.channels" in err

    assert await cli(served, "merchant-get", "nobody") == 1
    assert "NOT_FOUND" in capsys.readouterr().err


async def test_merchants_are_listed_page_by_page_with_a_maced_token(served: Served) -> None:
    """Issue 14: every list is paged with a capped page size (ListMerchants was not)."""
    for merchant_id in ("m-c", "m-a", "m-b"):
        await served.ops.PutMerchant(put(merchant_message(merchant_id=merchant_id), 0))
    first = await served.ops.ListMerchants(
        recharge_pb2.ListMerchantsRequest(page=recharge_pb2.PageRequest(page_size=2))
    )
    assert [m.merchant_id for m in first.merchants] == ["m-a", "m-b"] and first.next_page_token
    rest = await served.ops.ListMerchants(
        recharge_pb2.ListMerchantsRequest(
            page=recharge_pb2.PageRequest(page_size=2, page_token=first.next_page_token)
        )
    )
    assert [m.merchant_id for m in rest.merchants] == ["m-c"] and rest.next_page_token == ""
    for bad in (recharge_pb2.PageRequest(page_token="bS1h"), recharge_pb2.PageRequest(page_size=-1)):
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await served.ops.ListMerchants(recharge_pb2.ListMerchantsRequest(page=bad))
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_field(failed.value).startswith("page.")
