"""The PostgreSQL connection pool is sized by settings (``--db-pool-size``/``--db-max-overflow``);
SQLite has no such pool and ignores them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import QueuePool

from card_service.settings import CardSettings
from rc_common import db as db_module
from rc_common.db import Database
from rc_common.settings import parse_settings
from recharge_service.settings import RechargeSettings
from wechat_mock.settings import WechatSettings


@pytest.fixture
def engine_kwargs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each ``create_async_engine`` call was given (the engine is still created)."""
    seen: list[dict[str, Any]] = []

    def recording(url: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return create_async_engine(url, **kwargs)

    monkeypatch.setattr(db_module, "create_async_engine", recording)
    return seen


async def test_a_postgresql_pool_takes_its_size_and_overflow(engine_kwargs: list[dict[str, Any]]) -> None:
    database = Database("postgresql+asyncpg://rc@127.0.0.1:1/recharge", pool_size=3, max_overflow=1)
    try:
        assert (engine_kwargs[0]["pool_size"], engine_kwargs[0]["max_overflow"]) == (3, 1)
        pool = database.engine.pool
        assert isinstance(pool, QueuePool) and pool.size() == 3  # built without connecting
    finally:
        await database.dispose()


async def test_sqlite_ignores_the_pool_settings(tmp_path: Path, engine_kwargs: list[dict[str, Any]]) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", pool_size=3, max_overflow=1)
    await database.dispose()
    assert "pool_size" not in engine_kwargs[0] and "max_overflow" not in engine_kwargs[0]


def test_the_recharge_center_reads_the_pool_from_flags_or_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = parse_settings(RechargeSettings, [], prog="t", description="").database
    assert (defaults.pool_size, defaults.max_overflow) == (db_module.POOL_SIZE, db_module.MAX_OVERFLOW)
    monkeypatch.setenv("RECHARGE_DB_MAX_OVERFLOW", "0")
    settings = parse_settings(RechargeSettings, ["--db-pool-size", "4"], prog="t", description="")
    assert (settings.database.pool_size, settings.database.max_overflow) == (4, 0)


def test_the_simulators_read_the_pool_from_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_DB_POOL_SIZE", "2")
    argv = ["--db-pool-size", "5", "--db-max-overflow", "6"]
    card = parse_settings(CardSettings, argv, prog="t", description="")
    wechat = parse_settings(WechatSettings, [], prog="t", description="")
    assert (card.db_pool_size, card.db_max_overflow, wechat.db_pool_size) == (5, 6, 2)


@pytest.mark.parametrize("argv", [["--db-pool-size", "0"], ["--db-max-overflow", "-1"]])
def test_a_pool_without_connections_is_refused_naming_the_flag(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_settings(RechargeSettings, argv, prog="t", description="")
    assert argv[0] in capsys.readouterr().err
