"""Whom a request acts for: a merchant in *direct* mode (its own ``mchid``, app id and keys) or in
*partner* mode (服务商: the service provider's ``sp_mchid`` with the merchant's ``sub_mchid``).

Every PaymentGateway request names exactly one of the two (:class:`MerchantRef`, as the caller
sent it); :meth:`Accounts.resolve` checks it against the accounts this simulated WeChat Pay
knows and answers the :class:`Merchant` a trade or refund then belongs to for good.

Partner mode accepts any ``sub_mchid`` of 6-32 digits under our ``sp_mchid``; real WeChat also
requires the sub-merchant to be bound to the service provider (进件), which is not simulated.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rc_common.errors import InvalidArgument

#: WeChat merchant ids (mchid, sp_mchid, sub_mchid) are digits.
MCHID = re.compile(r"^[0-9]{6,32}$")


class MerchantMode(enum.StrEnum):
    DIRECT = "direct"
    """The merchant's own mchid, app id and keys (直连商户)."""
    PARTNER = "partner"
    """The service provider's sp_mchid and keys, with the merchant's sub_mchid (服务商模式)."""


@dataclass(frozen=True)
class MerchantRef:
    """The merchant fields of a request, unchecked: ``mchid`` (direct) or ``sp_mchid`` +
    ``sub_mchid`` (partner); all empty when the request named none."""

    mchid: str = ""
    sp_mchid: str = ""
    sub_mchid: str = ""

    @property
    def is_empty(self) -> bool:
        return not (self.mchid or self.sp_mchid or self.sub_mchid)


@dataclass(frozen=True)
class Merchant:
    """The merchant a trade or refund belongs to (only its own requests find it)."""

    mode: MerchantMode
    #: DIRECT: the merchant's mchid ('' in partner mode).
    mchid: str = ""
    #: PARTNER: the service provider and the sub-merchant ('' in direct mode).
    sp_mchid: str = ""
    sub_mchid: str = ""

    @classmethod
    def direct(cls, mchid: str) -> Merchant:
        return cls(MerchantMode.DIRECT, mchid=mchid)

    @classmethod
    def partner(cls, sp_mchid: str, sub_mchid: str) -> Merchant:
        return cls(MerchantMode.PARTNER, sp_mchid=sp_mchid, sub_mchid=sub_mchid)

    @property
    def is_direct(self) -> bool:
        return self.mode is MerchantMode.DIRECT

    @property
    def own_mchid(self) -> str:
        """The merchant's own id: its mchid (direct) or its sub_mchid (partner); the bill's ``mchid``."""
        return self.mchid if self.is_direct else self.sub_mchid

    @property
    def signer(self) -> str:
        """Whose keys sign and encrypt its notifications: '' = the service provider's, else the
        direct merchant's mchid."""
        return self.mchid if self.is_direct else ""

    def ids(self) -> dict[str, Any]:
        """The merchant fields of WeChat's documents: ``mchid`` (direct) or ``sp_mchid`` and
        ``sub_mchid`` (partner)."""
        if self.is_direct:
            return {"mchid": self.mchid}
        return {"sp_mchid": self.sp_mchid, "sub_mchid": self.sub_mchid}


@dataclass(frozen=True)
class Accounts:
    """The accounts this simulated WeChat Pay knows: the service provider (``sp_mchid``,
    ``sp_appid``) and the merchants allowed in direct mode (mchid -> app id)."""

    sp_mchid: str
    sp_appid: str
    direct: Mapping[str, str] = field(default_factory=dict)

    def require(self, ref: MerchantRef) -> Merchant:
        """The merchant ``ref`` names; InvalidArgument naming the field at fault (``merchant``
        when it names none, ``merchant.mchid``, ``merchant.sp_mchid``, ``merchant.sub_mchid``)."""
        if ref.is_empty:
            raise InvalidArgument(
                "merchant", "required: mchid (direct mode) or sp_mchid + sub_mchid (partner mode)"
            )
        if ref.mchid:
            for other in ("sp_mchid", "sub_mchid"):
                if getattr(ref, other):
                    raise InvalidArgument(f"merchant.{other}", "must be empty in direct mode (mchid is set)")
            if ref.mchid not in self.direct:
                raise InvalidArgument("merchant.mchid", f"{ref.mchid} is not a direct-mode merchant here")
            return Merchant.direct(ref.mchid)
        if not ref.sp_mchid:
            raise InvalidArgument("merchant.sp_mchid", "required in partner mode (or mchid: direct mode)")
        if ref.sp_mchid != self.sp_mchid:
            raise InvalidArgument("merchant.sp_mchid", f"{ref.sp_mchid} is not the service provider here")
        if not ref.sub_mchid:
            raise InvalidArgument("merchant.sub_mchid", "required in partner mode")
        if not MCHID.match(ref.sub_mchid):
            raise InvalidArgument("merchant.sub_mchid", "must be 6-32 digits")
        return Merchant.partner(ref.sp_mchid, ref.sub_mchid)

    def optional(self, ref: MerchantRef) -> Merchant | None:
        """:meth:`require`, but a ref naming no merchant is None (DownloadTradeBill: the service
        provider's view of every trade)."""
        return None if ref.is_empty else self.require(ref)

    def appid(self, merchant: Merchant) -> str:
        """The app id of the merchant's trades: its own (direct) or the service provider's."""
        return self.direct[merchant.mchid] if merchant.is_direct else self.sp_appid
