"""WeChat Pay keys, split the way WeChat splits them: what WeChat keeps, and what it hands a merchant.

Layout of ``--keys-dir`` (created on first start, then reused)::

    <keys-dir>/
    ├── platform/                      WeChat's own (mode 0700): the product never reads it
    │   ├── platform_private_key.pem   signs notifications and responses (PKCS#8 PEM)
    │   ├── public_key_id.txt          the id sent in ``Wechatpay-Serial`` (``PUB_KEY_ID_…``)
    │   ├── apiv3_key.txt              the merchant's APIv3 key, as WeChat records it
    │   └── direct/<mchid>/            the same, for each direct-mode merchant
    └── merchant/                      the provider's merchant bundle (the recharge center's
        │                              ``--wechat-keys-dir``): only what a real merchant holds
        ├── platform_public_key.pem    WeChat's platform public key (SubjectPublicKeyInfo PEM)
        ├── public_key_id.txt          its id
        ├── apiv3_key.txt              the APIv3 key (AES-256-GCM key of notification resources)
        ├── mchid.txt                  the merchant's own mchid
        ├── apiclient_key.pem          the merchant's own private key (signs its requests to WeChat)
        ├── apiclient_cert.pem         its certificate (CN = mchid), as WeChat issues it
        ├── apiclient_serial.txt       the certificate's serial number (upper-case hex)
        └── direct/<mchid>/            the same bundle, for each direct-mode merchant

WeChat's side is the source: the bundle's copies of the public key, its id and the APIv3 key are
rewritten from it when they differ. A keys dir of the older flat layout (the platform private key
at its top) is adopted on first start: its keys move into ``platform/`` (so ids and keys stay the
same) and the flat files the recharge center used to read are removed.
"""

from __future__ import annotations

import datetime
import os
import re
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

#: WeChat's side of the keys dir, and the merchants' bundles.
PLATFORM_DIR = "platform"
MERCHANT_DIR = "merchant"
#: Where the direct-mode merchants' keys live, one directory per mchid, under either side.
DIRECT_DIR = "direct"

PRIVATE_KEY_FILE = "platform_private_key.pem"
PUBLIC_KEY_FILE = "platform_public_key.pem"
PUBLIC_KEY_ID_FILE = "public_key_id.txt"
APIV3_KEY_FILE = "apiv3_key.txt"
MCHID_FILE = "mchid.txt"
MERCHANT_KEY_FILE = "apiclient_key.pem"
MERCHANT_CERT_FILE = "apiclient_cert.pem"
MERCHANT_SERIAL_FILE = "apiclient_serial.txt"
#: The provider's mchid when none is named (the simulator's and the recharge center's default).
PROVIDER_MCHID = "1900000109"
#: How long a merchant certificate the simulator issues is valid.
MERCHANT_CERT_DAYS = 5 * 365
_MCHID_DIR = re.compile(r"^[0-9]{6,32}$")


@dataclass(frozen=True)
class PlatformKeys:
    """One merchant account's keys as WeChat (the simulator) holds them."""

    private_key_pem: bytes
    public_key_pem: bytes
    public_key_id: str
    apiv3_key: str
    #: The merchant's mchid, and its certificate (WeChat verifies the merchant's requests with it).
    mchid: str = ""
    merchant_cert_pem: bytes = b""
    merchant_serial: str = ""


def platform_dir(keys_dir: str | Path, direct_mchid: str = "") -> Path:
    """WeChat's own keys: the provider's (``direct_mchid`` "") or a direct merchant's."""
    root = Path(keys_dir) / PLATFORM_DIR
    return root / DIRECT_DIR / direct_mchid if direct_mchid else root


def merchant_bundle_dir(keys_dir: str | Path, direct_mchid: str = "") -> Path:
    """The bundle the recharge center reads: the provider's (``direct_mchid`` "", its
    ``--wechat-keys-dir``) or a direct merchant's (its configuration's ``wechat.keys_dir``)."""
    root = Path(keys_dir) / MERCHANT_DIR
    return root / DIRECT_DIR / direct_mchid if direct_mchid else root


def ensure_keys(keys_dir: str | Path, mchid: str = PROVIDER_MCHID) -> PlatformKeys:
    """The service provider's keys (partner mode), creating any that are missing (idempotent)."""
    _adopt_flat_layout(Path(keys_dir))
    return _ensure(platform_dir(keys_dir), merchant_bundle_dir(keys_dir), mchid)


def ensure_direct_keys(keys_dir: str | Path, mchids: Iterable[str]) -> dict[str, PlatformKeys]:
    """Each direct merchant's keys (``mchids``: created when missing), and those of any merchant
    whose keys are already there although it is no longer listed: its trades' notifications
    (pending deliveries, refunds settling later) are still signed with its own keys."""
    _adopt_flat_layout(Path(keys_dir))
    wanted = set(mchids)
    root = platform_dir(keys_dir) / DIRECT_DIR
    if root.is_dir():
        wanted.update(
            entry.name
            for entry in root.iterdir()
            if _MCHID_DIR.match(entry.name) and (entry / PRIVATE_KEY_FILE).is_file()
        )
    return {
        mchid: _ensure(platform_dir(keys_dir, mchid), merchant_bundle_dir(keys_dir, mchid), mchid)
        for mchid in sorted(wanted)
    }


def load_keys(keys_dir: str | Path, direct_mchid: str = "") -> PlatformKeys:
    """The keys already there (nothing is written): the provider's (``direct_mchid`` "") or a
    direct merchant's; ``OSError`` when they were never created."""
    platform, bundle = platform_dir(keys_dir, direct_mchid), merchant_bundle_dir(keys_dir, direct_mchid)
    private_pem = (platform / PRIVATE_KEY_FILE).read_bytes()
    return PlatformKeys(
        private_pem,
        _public_pem(private_pem),
        (platform / PUBLIC_KEY_ID_FILE).read_text().strip(),
        (platform / APIV3_KEY_FILE).read_text().strip(),
        (bundle / MCHID_FILE).read_text().strip(),
        (bundle / MERCHANT_CERT_FILE).read_bytes(),
        (bundle / MERCHANT_SERIAL_FILE).read_text().strip(),
    )


def _public_pem(private_pem: bytes) -> bytes:
    private_key = serialization.load_pem_private_key(private_pem, password=None)
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _ensure(platform: Path, bundle: Path, mchid: str) -> PlatformKeys:
    platform.mkdir(parents=True, exist_ok=True)
    _owner_only(platform)
    bundle.mkdir(parents=True, exist_ok=True)
    private_pem = _ensure_private_key(platform / PRIVATE_KEY_FILE)
    public_pem = _public_pem(private_pem)
    public_key_id = _ensure_text(platform / PUBLIC_KEY_ID_FILE, _new_public_key_id)
    apiv3_key = _ensure_text(platform / APIV3_KEY_FILE, _new_apiv3_key, private=True)
    if len(apiv3_key.encode()) != 32:
        raise ValueError(f"{platform / APIV3_KEY_FILE}: the APIv3 key must be exactly 32 bytes")
    # What WeChat hands the merchant: copies, rewritten when they differ from WeChat's records.
    _sync(bundle / PUBLIC_KEY_FILE, public_pem)
    _sync(bundle / PUBLIC_KEY_ID_FILE, public_key_id.encode())
    _sync(bundle / APIV3_KEY_FILE, apiv3_key.encode(), private=True)
    _sync(bundle / MCHID_FILE, mchid.encode())
    cert_pem, serial = _ensure_merchant_certificate(bundle, mchid)
    return PlatformKeys(private_pem, public_pem, public_key_id, apiv3_key, mchid, cert_pem, serial)


def _ensure_private_key(path: Path) -> bytes:
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write(
            path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            private=True,
        )
    return path.read_bytes()


def _ensure_merchant_certificate(bundle: Path, mchid: str) -> tuple[bytes, str]:
    """The merchant's own key pair and certificate: (re)issued when missing or not for ``mchid``."""
    key_pem = _ensure_private_key(bundle / MERCHANT_KEY_FILE)
    cert_path = bundle / MERCHANT_CERT_FILE
    cert: x509.Certificate | None = None
    if cert_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_pem, password=None)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if [n.value for n in names] != [mchid] or _spki(cert.public_key()) != _spki(key.public_key()):
            cert = None
    if cert is None:
        cert = _issue_certificate(key_pem, mchid)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    serial = format(cert.serial_number, "X")
    _sync(bundle / MERCHANT_SERIAL_FILE, serial.encode())
    return cert_path.read_bytes(), serial


def _issue_certificate(key_pem: bytes, mchid: str) -> x509.Certificate:
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)  # written by _ensure_private_key
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, mchid),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "WeChat Pay simulator merchant"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=MERCHANT_CERT_DAYS))
        .sign(key, hashes.SHA256())
    )


def _spki(key: object) -> bytes:
    assert isinstance(key, rsa.RSAPublicKey)  # both sides are the RSA keys written here
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _adopt_flat_layout(keys_dir: Path) -> None:
    """Move the keys of the older flat layout (``<keys-dir>/platform_private_key.pem``…, and
    ``<keys-dir>/direct/<mchid>/…``) into ``platform/``: the recharge center used to be pointed at
    those directories, so nothing of WeChat's private side may stay there."""
    flat = [keys_dir]
    old_direct = keys_dir / DIRECT_DIR
    if old_direct.is_dir():
        flat += [entry for entry in old_direct.iterdir() if _MCHID_DIR.match(entry.name)]
    for directory in flat:
        if not (directory / PRIVATE_KEY_FILE).is_file():
            continue
        target = platform_dir(keys_dir, "" if directory == keys_dir else directory.name)
        target.mkdir(parents=True, exist_ok=True)
        _owner_only(target)
        for name in (PUBLIC_KEY_ID_FILE, APIV3_KEY_FILE, PRIVATE_KEY_FILE):  # the private key last
            if (directory / name).exists() and not (target / name).exists():
                os.replace(directory / name, target / name)
        for name in (PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, PUBLIC_KEY_ID_FILE, APIV3_KEY_FILE):
            (directory / name).unlink(missing_ok=True)
        if directory != keys_dir and not any(directory.iterdir()):
            directory.rmdir()
    if old_direct.is_dir() and not any(old_direct.iterdir()):
        old_direct.rmdir()


def _owner_only(directory: Path) -> None:
    if directory.stat().st_mode & 0o077:
        os.chmod(directory, 0o700)


def _new_public_key_id() -> str:
    return "PUB_KEY_ID_" + secrets.token_hex(16).upper()


def _new_apiv3_key() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


def _ensure_text(path: Path, make: Callable[[], str], *, private: bool = False) -> str:
    if not path.exists():
        _write(path, make().encode(), private=private)
    return path.read_text().strip()


def _sync(path: Path, data: bytes, *, private: bool = False) -> None:
    if not path.exists() or path.read_bytes() != data:
        _write(path, data, private=private)


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write atomically; ``private``: readable by the owner only."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
