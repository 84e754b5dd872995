"""A merchant: one card program, its channels, callbacks, payment window, WeChat account, limits.

The recharge center serves many merchants. Each configuration change is a new immutable
*version*; an order records the version it was created with and keeps it (its payment window,
WeChat account and callback targets never change under it). ``MerchantConfig.checked`` is the
one validation of a configuration, for the ops RPC and the CLI alike.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from rc_common.errors import InvalidArgument
from recharge_service.domain.order import Channel

MERCHANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
WECHAT_MCHID = re.compile(r"^[0-9]{6,32}$")
MAX_EXPIRY = timedelta(days=7)


class WechatMode(enum.StrEnum):
    """How the merchant is paid through WeChat Pay."""

    #: 服务商 mode: the provider's sp_mchid (a setting of the recharge center) with the merchant's
    #: sub_mchid; the provider's keys sign and encrypt.
    PARTNER = "partner"
    #: The merchant's own mchid, with its own platform key and APIv3 key (``keys_dir``).
    DIRECT = "direct"


@dataclass(frozen=True)
class WechatAccount:
    """Who WeChat Pay requests act for, as an order keeps it."""

    mode: WechatMode
    #: DIRECT: the merchant's mchid; PARTNER: its sub_mchid.
    mchid: str
    appid: str = ""
    #: DIRECT only: directory with the merchant's platform public key, its id and APIv3 key.
    keys_dir: str = ""


def check_merchant_id(value: str, field_name: str = "merchant_id") -> str:
    if not MERCHANT_ID.match(value):
        raise InvalidArgument(field_name, "required: 1-32 characters of A-Z a-z 0-9 _ -")
    return value


@dataclass(frozen=True)
class MerchantConfig:
    merchant_id: str
    display_name: str
    channels: frozenset[Channel]
    #: Callback target (host:port of RechargeCallbacks) per channel; absent = not called back.
    callbacks: dict[Channel, str] = field(default_factory=dict, hash=False)
    order_expiry: timedelta = timedelta(minutes=30)
    wechat: WechatAccount = WechatAccount(WechatMode.PARTNER, "")
    #: Orders waiting for payment (CREATED, AWAITING_PAYMENT) at most; 0 = no limit.
    max_open_orders: int = 0
    #: CreateRechargeOrder calls per second (bursts of twice that); 0 = no limit.
    max_create_rate: int = 0
    disabled: bool = False
    version: int = 0
    updated_at: datetime | None = None

    def checked(self) -> MerchantConfig:
        """This configuration if it is valid; InvalidArgument naming the first field at fault."""
        check_merchant_id(self.merchant_id, "merchant.merchant_id")
        if not 1 <= len(self.display_name) <= 64:
            raise InvalidArgument("merchant.display_name", "required, at most 64 characters")
        if not self.channels:
            raise InvalidArgument("merchant.channels", "enable at least one channel")
        for channel, target in self.callbacks.items():
            if channel not in self.channels:
                raise InvalidArgument("merchant.callbacks", f"{channel.name} is not an enabled channel")
            host, sep, port = target.rpartition(":")
            if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
                raise InvalidArgument("merchant.callbacks", f"{channel.name}: host:port expected")
        if not timedelta(0) < self.order_expiry <= MAX_EXPIRY:
            raise InvalidArgument("merchant.order_expiry_seconds", "positive, at most 604800 (7 days)")
        if not WECHAT_MCHID.match(self.wechat.mchid):
            raise InvalidArgument("merchant.wechat.mchid", "required: the (sub-)merchant id, digits")
        if self.wechat.mode is WechatMode.DIRECT and not self.wechat.keys_dir:
            raise InvalidArgument("merchant.wechat.keys_dir", "required in direct mode")
        if self.wechat.mode is WechatMode.PARTNER and self.wechat.keys_dir:
            raise InvalidArgument("merchant.wechat.keys_dir", "partner mode uses the provider's keys")
        for name in ("max_open_orders", "max_create_rate"):
            if not 0 <= getattr(self, name) <= 1_000_000:
                raise InvalidArgument(f"merchant.{name}", "between 0 (no limit) and 1000000")
        return self

    def next_version(self, at: datetime) -> MerchantConfig:
        return replace(self, version=self.version + 1, updated_at=at)

    def accepts(self, channel: Channel) -> bool:
        return not self.disabled and channel in self.channels
