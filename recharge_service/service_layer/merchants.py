"""Merchants: who may sell top-ups here, and the configuration each order keeps.

A change to a merchant is a new version (``PutMerchant``, audited with operator and reason on
the merchant's history); it takes effect for new orders without a restart (the directory's cache
of the *current* version lives ``--merchant-cache-ttl`` seconds). An order records the version it
was created with, and every later step reads that version (versions never change, so they are
cached for good): a new payment window, WeChat account or callback target never moves an order
that already exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rc_common import page_tokens, validation
from rc_common.errors import InvalidArgument, NotFound, Refused
from recharge_service.domain.merchant import MerchantConfig, WechatAccount, check_merchant_id
from recharge_service.domain.order import Channel, RechargeOrder

#: ListMerchants: merchants per page when the request names no size.
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class MerchantChange:
    """One version of a merchant's configuration, as its history shows it."""

    config: MerchantConfig
    operator: str
    reason: str
    at: datetime


class StaleMerchant(Refused):
    """``expected_version`` is not the merchant's current version (someone changed it first)."""

    def __init__(self, merchant_id: str, expected: int, current: int) -> None:
        super().__init__(
            "MERCHANT_VERSION_CHANGED",
            f"merchant {merchant_id} is at version {current}, not {expected}: read it again",
            merchant_id=merchant_id,
        )
        self.current = current


class MerchantDirectory(Protocol):
    """Where merchant configurations are kept (``adapters/merchants.py``; tests: in memory)."""

    async def current(self, merchant_id: str) -> MerchantConfig | None:
        """The merchant's current configuration (may be up to the cache's TTL old)."""
        ...

    async def version(self, merchant_id: str, version: int) -> MerchantConfig | None:
        """One version, exactly as it was written."""
        ...

    async def put(
        self, config: MerchantConfig, expected_version: int, operator: str, reason: str, at: datetime
    ) -> MerchantConfig:
        """Write ``config`` as version ``expected_version + 1`` (0 creates the merchant) with its
        audit row, in one transaction; ``StaleMerchant`` when another change came first."""
        ...

    async def history(self, merchant_id: str) -> list[MerchantChange]:
        """Every version, oldest first."""
        ...

    async def all(self) -> list[MerchantConfig]:
        """Every merchant's current configuration, by merchant id."""
        ...


async def merchant_for_new_order(
    directory: MerchantDirectory, merchant_id: str, channel: Channel
) -> MerchantConfig:
    """The configuration a new order of ``merchant_id`` through ``channel`` gets, or the refusal."""
    check_merchant_id(merchant_id)
    config = await directory.current(merchant_id)
    if config is None:
        raise NotFound(f"no merchant {merchant_id}")
    if config.disabled:
        raise Refused("MERCHANT_DISABLED", f"merchant {merchant_id} is disabled")
    if not config.accepts(channel):
        raise Refused("CHANNEL_DISABLED", f"merchant {merchant_id} does not sell through {channel.name}")
    return config


async def merchant_of(directory: MerchantDirectory, order: RechargeOrder) -> MerchantConfig:
    """The configuration ``order`` was created with."""
    config = await directory.version(order.merchant_id, order.merchant_version)
    if config is None:  # versions are never deleted: a broken database, not a caller's mistake
        raise LookupError(
            f"order {order.order_no}: merchant {order.merchant_id} v{order.merchant_version} missing"
        )
    return config


async def put_merchant(
    directory: MerchantDirectory,
    config: MerchantConfig,
    expected_version: int,
    operator: str,
    reason: str,
    at: datetime,
) -> MerchantConfig:
    """Create (``expected_version`` 0) or change a merchant: the new version as written, audited
    with who and why. Bad input is ``InvalidArgument`` naming the field and writes nothing; a
    change based on a stale version is ``StaleMerchant``."""
    operator, reason = operator.strip(), reason.strip()
    if not 1 <= len(operator) <= 64:
        raise InvalidArgument("operator", "required: who is acting, 1 to 64 characters")
    if not 1 <= len(reason) <= 500:
        raise InvalidArgument("reason", "required: why, 1 to 500 characters")
    checked = config.checked()
    if expected_version < 0:
        raise InvalidArgument("expected_version", "0 to create the merchant, else its current version")
    return await directory.put(checked, expected_version, operator, reason, at)


async def wechat_account(directory: MerchantDirectory, order: RechargeOrder) -> WechatAccount:
    """The WeChat account every payment call for ``order`` acts for (its merchant version's)."""
    return (await merchant_of(directory, order)).wechat


@dataclass(frozen=True)
class MerchantPage:
    merchants: list[MerchantConfig]
    next_page_token: str


async def list_merchants(
    directory: MerchantDirectory, page_size: int = 0, page_token: str = ""
) -> MerchantPage:
    """The merchants in merchant_id order, one capped page at a time."""
    limit = validation.page_size("page.page_size", page_size, DEFAULT_PAGE_SIZE)
    after = ""
    if page_token:
        try:
            after = page_tokens.read("merchant", page_token, 1)[0]
        except ValueError:
            raise InvalidArgument("page.page_token", "not a token from a previous page") from None
    found = [m for m in sorted(await directory.all(), key=lambda m: m.merchant_id) if m.merchant_id > after]
    page = found[:limit]
    more = len(found) > limit
    return MerchantPage(page, page_tokens.make("merchant", [page[-1].merchant_id]) if more else "")
