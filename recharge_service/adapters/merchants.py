"""Merchant configurations in SQL: ``merchants`` (the current version) and ``merchant_versions``
(every version, immutable: what orders point at, and the audit trail).

One JSON codec (``config_to_json`` / ``config_from_json``) serves both tables and the history's
``config_json``. ``put`` is one unit of work: read the merchant's row, check the expected version,
INSERT (creating) or ``UPDATE … WHERE version = :expected`` (changing, rowcount checked), and
INSERT the version row — plain SQL that runs on SQLite and PostgreSQL alike.

Caching (per process): a version never changes, so ``version()`` is cached for good; ``current()``
is cached per merchant for ``ttl`` seconds (monotonic clock), so another node's change is seen
within ``ttl``; this process's own ``put`` refreshes its cache at once. Misses are not cached (an
unknown id costs one primary-key read and does not grow the cache; a merchant created elsewhere
is seen at once).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from rc_common.db import Database
from recharge_service.adapters.orm import merchant_versions, merchants
from recharge_service.domain.merchant import MerchantConfig, WechatAccount, WechatMode
from recharge_service.domain.order import Channel
from recharge_service.service_layer.merchants import MerchantChange, StaleMerchant

_SECOND = timedelta(seconds=1)


# -- the codec ---------------------------------------------------------------------------------


def config_to_dict(config: MerchantConfig) -> dict[str, Any]:
    """``config`` as plain JSON values (channels by name, the expiry in seconds)."""
    expiry = config.order_expiry / _SECOND
    return {
        "merchant_id": config.merchant_id,
        "display_name": config.display_name,
        "channels": sorted(channel.name for channel in config.channels),
        "callbacks": {channel.name: target for channel, target in sorted(config.callbacks.items())},
        "order_expiry": int(expiry) if expiry.is_integer() else expiry,
        "wechat": {
            "mode": config.wechat.mode.value,
            "mchid": config.wechat.mchid,
            "appid": config.wechat.appid,
            "keys_dir": config.wechat.keys_dir,
        },
        "max_open_orders": config.max_open_orders,
        "max_create_rate": config.max_create_rate,
        "disabled": config.disabled,
        "version": config.version,
        "updated_at": config.updated_at.isoformat() if config.updated_at is not None else None,
    }


def config_to_json(config: MerchantConfig) -> str:
    return json.dumps(config_to_dict(config), ensure_ascii=False, sort_keys=True)


def config_from_dict(data: dict[str, Any]) -> MerchantConfig:
    """The inverse of ``config_to_dict``; a key missing (written before it existed) takes the
    field's default, an unknown key is ignored."""
    defaults = MerchantConfig(merchant_id="", display_name="", channels=frozenset())
    wechat = data.get("wechat") or {}
    updated_at = data.get("updated_at")
    return MerchantConfig(
        merchant_id=data["merchant_id"],
        display_name=data.get("display_name", ""),
        channels=frozenset(Channel[name] for name in data.get("channels", ())),
        callbacks={Channel[name]: target for name, target in (data.get("callbacks") or {}).items()},
        order_expiry=timedelta(seconds=data["order_expiry"])
        if "order_expiry" in data
        else defaults.order_expiry,
        wechat=WechatAccount(
            mode=WechatMode(wechat.get("mode", defaults.wechat.mode.value)),
            mchid=wechat.get("mchid", ""),
            appid=wechat.get("appid", ""),
            keys_dir=wechat.get("keys_dir", ""),
        ),
        max_open_orders=data.get("max_open_orders", defaults.max_open_orders),
        max_create_rate=data.get("max_create_rate", defaults.max_create_rate),
        disabled=data.get("disabled", defaults.disabled),
        version=data.get("version", 0),
        updated_at=datetime.fromisoformat(updated_at) if updated_at else None,
    )


def config_from_json(text: str) -> MerchantConfig:
    return config_from_dict(json.loads(text))


# -- the directory -----------------------------------------------------------------------------


class _CreatedMeanwhile(Exception):
    """The merchant's row appeared between our read and our INSERT (PostgreSQL, concurrent put)."""


m = merchants.c
mv = merchant_versions.c


class SqlMerchantDirectory:
    """``MerchantDirectory`` on the ``merchants`` and ``merchant_versions`` tables."""

    def __init__(self, db: Database, ttl: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._ttl = ttl
        self._monotonic = monotonic
        #: (merchant_id, version) -> that version; versions never change.
        self._versions: dict[tuple[str, int], MerchantConfig] = {}
        #: merchant_id -> (monotonic time it goes stale, current configuration).
        self._current: dict[str, tuple[float, MerchantConfig]] = {}

    # -- reads ---------------------------------------------------------------------------------

    async def current(self, merchant_id: str) -> MerchantConfig | None:
        cached = self._current.get(merchant_id)
        if cached is not None and self._monotonic() < cached[0]:
            return cached[1]

        def query(conn: Connection) -> str | None:
            return conn.execute(select(m.config).where(m.merchant_id == merchant_id)).scalar()

        text = await self._db.read(query)
        if text is None:
            return None
        return self._remember(config_from_json(text))

    async def version(self, merchant_id: str, version: int) -> MerchantConfig | None:
        cached = self._versions.get((merchant_id, version))
        if cached is not None:
            return cached

        def query(conn: Connection) -> str | None:
            return conn.execute(
                select(mv.config).where(mv.merchant_id == merchant_id, mv.version == version)
            ).scalar()

        text = await self._db.read(query)
        if text is None:
            return None
        config = config_from_json(text)
        self._versions[(merchant_id, version)] = config
        return config

    async def history(self, merchant_id: str) -> list[MerchantChange]:
        def query(conn: Connection) -> list[Any]:
            return list(
                conn.execute(
                    select(mv.config, mv.operator, mv.reason, mv.at)
                    .where(mv.merchant_id == merchant_id)
                    .order_by(mv.version)
                )
            )

        changes = []
        for row in await self._db.read(query):
            config = config_from_json(row.config)
            self._versions.setdefault((config.merchant_id, config.version), config)
            changes.append(MerchantChange(config, row.operator, row.reason, row.at))
        return changes

    async def all(self) -> list[MerchantConfig]:
        def query(conn: Connection) -> list[str]:
            return list(conn.execute(select(m.config).order_by(m.merchant_id)).scalars())

        return [config_from_json(text) for text in await self._db.read(query)]

    # -- the one write -------------------------------------------------------------------------

    async def put(
        self, config: MerchantConfig, expected_version: int, operator: str, reason: str, at: datetime
    ) -> MerchantConfig:
        merchant_id = config.merchant_id
        written = replace(config, version=expected_version + 1, updated_at=at)
        text = config_to_json(written)

        def unit(conn: Connection) -> MerchantConfig:
            current = conn.execute(select(m.version).where(m.merchant_id == merchant_id)).scalar()
            if (current or 0) != expected_version:
                raise StaleMerchant(merchant_id, expected_version, current or 0)
            values = {"version": written.version, "config": text, "updated_at": at}
            if expected_version == 0:
                try:
                    conn.execute(insert(merchants).values(merchant_id=merchant_id, **values))
                except IntegrityError as exc:
                    raise _CreatedMeanwhile from exc
            else:
                changed = conn.execute(
                    update(merchants)
                    .where(m.merchant_id == merchant_id, m.version == expected_version)
                    .values(**values)
                )
                if changed.rowcount != 1:  # another change committed since our read (PostgreSQL)
                    now = conn.execute(select(m.version).where(m.merchant_id == merchant_id)).scalar()
                    raise StaleMerchant(merchant_id, expected_version, now or 0)
            conn.execute(
                insert(merchant_versions).values(
                    merchant_id=merchant_id,
                    version=written.version,
                    config=text,
                    operator=operator,
                    reason=reason,
                    at=at,
                )
            )
            return written

        try:
            await self._db.write(unit, label="merchant")
        except _CreatedMeanwhile:
            now = await self._db.read(
                lambda conn: conn.execute(select(m.version).where(m.merchant_id == merchant_id)).scalar()
            )
            raise StaleMerchant(merchant_id, expected_version, now or 0) from None
        self._versions[(merchant_id, written.version)] = written
        return self._remember(written)

    def _remember(self, config: MerchantConfig) -> MerchantConfig:
        """Cache ``config`` as current for ``ttl`` unless a newer version is cached already (a read
        that started before this process's own put must not bring the old version back)."""
        cached = self._current.get(config.merchant_id)
        if cached is not None and cached[1].version > config.version:
            return cached[1]
        self._current[config.merchant_id] = (self._monotonic() + self._ttl, config)
        return config
