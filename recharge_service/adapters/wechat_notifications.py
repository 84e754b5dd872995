"""Opening WeChat Pay notifications: signature, freshness, decryption (platform public key mode).

The provider's keys come from ``--wechat-keys-dir``, a merchant bundle: ``platform_public_key.pem``,
``public_key_id.txt`` and ``apiv3_key.txt``; they are read at start and again on a notification if
they were missing then. A keys dir holding WeChat's platform private key is refused
(:mod:`recharge_service.adapters.key_guard`): the recharge center does not start, a direct
merchant's keys are not loaded. A direct-mode merchant's keys (same files) are in the ``keys_dir`` of its
configuration; the service layer hands those directories over (``use_direct_keys``) and the
notification's ``Wechatpay-Serial`` picks the key set. ``OpenedNotification.keys_dir`` says which
one opened it ("" = the provider's), so a merchant's keys never vouch for another's payment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rc_common import wechatpay_crypto as crypto
from rc_common.logs import get_logger
from recharge_service.adapters.key_guard import KeysDirRefused, refuse_platform_private_key
from recharge_service.service_layer.notifications import BadNotification, OpenedNotification, UnknownSerial

PUBLIC_KEY_FILE = "platform_public_key.pem"
PUBLIC_KEY_ID_FILE = "public_key_id.txt"
APIV3_KEY_FILE = "apiv3_key.txt"

log = get_logger("notifications")


@dataclass(frozen=True)
class MerchantKeys:
    public_key_pem: bytes
    public_key_id: str
    apiv3_key: str


def load_keys(keys_dir: str | Path) -> MerchantKeys:
    """The keys of a merchant bundle; raises ``KeysDirRefused`` when the directory holds WeChat's
    platform private key (or is no bundle), ``OSError``/``ValueError`` when a file is missing or wrong."""
    directory = Path(keys_dir)
    refuse_platform_private_key(directory)
    apiv3_key = (directory / APIV3_KEY_FILE).read_text().strip()
    if len(apiv3_key.encode()) != 32:
        raise ValueError(f"{directory / APIV3_KEY_FILE}: the APIv3 key must be exactly 32 bytes")
    return MerchantKeys(
        (directory / PUBLIC_KEY_FILE).read_bytes(),
        (directory / PUBLIC_KEY_ID_FILE).read_text().strip(),
        apiv3_key,
    )


class NotificationOpener:
    """Verifies and decrypts one notification or raises ``BadNotification`` saying why."""

    def __init__(
        self, keys_dir: str | Path, max_skew_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._keys_dir = keys_dir
        self._max_skew_s = max_skew_s
        self._clock = clock
        self._keys: MerchantKeys | None = None
        self._direct: dict[str, MerchantKeys] = {}  # keys_dir -> that merchant's keys
        try:
            self._keys = load_keys(keys_dir)  # KeysDirRefused: the service does not start
        except (OSError, ValueError):
            self._keys = None  # tried again on the first notification

    def use_direct_keys(self, keys_dirs: Sequence[str]) -> None:
        """Load the direct-mode merchants' key sets not loaded yet (unreadable ones are skipped
        and tried again next time: a notification they should open is refused meanwhile)."""
        for keys_dir in keys_dirs:
            if keys_dir not in self._direct:
                try:
                    self._direct[keys_dir] = load_keys(keys_dir)
                except KeysDirRefused as refused:
                    log.error(refused.event, error=str(refused), **refused.fields)
                except (OSError, ValueError):
                    continue

    def _keys_for(self, headers: Mapping[str, str]) -> tuple[str, MerchantKeys]:
        serial = crypto.header(headers, crypto.HEADER_SERIAL)
        provider = self._loaded()
        if serial == provider.public_key_id:
            return "", provider
        for keys_dir, keys in self._direct.items():
            if serial == keys.public_key_id:
                return keys_dir, keys
        raise UnknownSerial("Wechatpay-Serial is not a platform public key id we know")

    def _loaded(self) -> MerchantKeys:
        if self._keys is None:
            try:
                self._keys = load_keys(self._keys_dir)
            except KeysDirRefused as refused:
                log.error(refused.event, error=str(refused), **refused.fields)
                raise BadNotification("merchant keys refused: not a merchant bundle") from None
            except (OSError, ValueError) as exc:
                raise BadNotification(f"merchant keys not available: {exc}") from exc
        return self._keys

    def open(self, headers: Mapping[str, str], body: bytes) -> OpenedNotification:
        try:
            keys_dir, keys = self._keys_for(headers)
        except UnknownSerial as exc:
            exc.order_no = _named_order(self._loaded(), body)
            raise
        try:
            self._verify(keys, headers, body)
        except BadNotification as exc:
            # For the order's timeline only: which order the refused notification names, if its
            # resource decrypts under our APIv3 key. Nothing else is taken from it.
            exc.order_no = _named_order(keys, body)
            raise
        try:
            envelope, resource = crypto.open_notification(keys.apiv3_key, body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadNotification(f"cannot decrypt the resource: {exc}") from exc
        return OpenedNotification(
            notification_id=str(envelope.get("id", "")),
            event_type=str(envelope.get("event_type", "")),
            resource=_as_dict(resource),
            keys_dir=keys_dir,
        )

    def _verify(self, keys: MerchantKeys, headers: Mapping[str, str], body: bytes) -> None:
        signature = crypto.header(headers, crypto.HEADER_SIGNATURE)
        timestamp = crypto.header(headers, crypto.HEADER_TIMESTAMP)
        if not signature:
            raise BadNotification("missing Wechatpay-Signature")
        if signature.startswith(crypto.SIGN_TEST_PREFIX):
            raise BadNotification("signature probe (WECHATPAY/SIGNTEST/) refused")
        if crypto.header(headers, crypto.HEADER_SIGNATURE_TYPE) != crypto.SIGNATURE_TYPE:
            raise BadNotification(f"Wechatpay-Signature-Type must be {crypto.SIGNATURE_TYPE}")
        if not crypto.timestamp_is_fresh(timestamp, self._clock(), self._max_skew_s):
            raise BadNotification(f"Wechatpay-Timestamp {timestamp!r} is more than {self._max_skew_s:g}s off")
        nonce = crypto.header(headers, crypto.HEADER_NONCE)
        if not crypto.verify(keys.public_key_pem, timestamp, nonce, body, signature):
            raise BadNotification("signature does not verify with the platform public key")


def _named_order(keys: MerchantKeys, body: bytes) -> str:
    try:
        _envelope, resource = crypto.open_notification(keys.apiv3_key, body)
    except (ValueError, UnicodeDecodeError):
        return ""
    return str(resource.get("out_trade_no", "")) if isinstance(resource, dict) else ""


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}
