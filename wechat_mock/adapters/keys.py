"""WeChat Pay platform keys: an RSA-2048 key pair (platform public key mode) and the APIv3 key.

Files in the keys dir (created on first start, then reused):
- ``platform_private_key.pem`` — the simulator signs notifications with it (PKCS#8 PEM);
- ``platform_public_key.pem`` — merchants verify with it (SubjectPublicKeyInfo PEM);
- ``public_key_id.txt`` — the id sent in ``Wechatpay-Serial`` (``PUB_KEY_ID_…``);
- ``apiv3_key.txt`` — the 32-character APIv3 key (AES-256-GCM key of notification resources).

The keys dir's own files are the service provider's (partner mode). Each direct-mode merchant
has its own set, in the same layout, in ``<keys-dir>/direct/<mchid>/`` (:func:`direct_keys_dir`):
a verifier of its notifications needs its ``platform_public_key.pem``, ``public_key_id.txt`` and
``apiv3_key.txt``.
"""

from __future__ import annotations

import os
import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PRIVATE_KEY_FILE = "platform_private_key.pem"
PUBLIC_KEY_FILE = "platform_public_key.pem"
PUBLIC_KEY_ID_FILE = "public_key_id.txt"
APIV3_KEY_FILE = "apiv3_key.txt"
#: Where the direct-mode merchants' keys live, one directory per mchid, under the keys dir.
DIRECT_DIR = "direct"
_MCHID_DIR = re.compile(r"^[0-9]{6,32}$")


@dataclass(frozen=True)
class PlatformKeys:
    private_key_pem: bytes
    public_key_pem: bytes
    public_key_id: str
    apiv3_key: str


def ensure_keys(keys_dir: str | Path) -> PlatformKeys:
    """Load the keys from ``keys_dir``, creating any that are missing (idempotent)."""
    directory = Path(keys_dir)
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / PRIVATE_KEY_FILE
    if not private_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(
            private_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
    private_pem = private_path.read_bytes()
    private_key = serialization.load_pem_private_key(private_pem, password=None)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_path = directory / PUBLIC_KEY_FILE
    if not public_path.exists() or public_path.read_bytes() != public_pem:
        public_path.write_bytes(public_pem)
    id_path = directory / PUBLIC_KEY_ID_FILE
    if not id_path.exists():
        id_path.write_text("PUB_KEY_ID_" + secrets.token_hex(16).upper())
    apiv3_path = directory / APIV3_KEY_FILE
    if not apiv3_path.exists():
        alphabet = string.ascii_letters + string.digits
        _write_private(apiv3_path, "".join(secrets.choice(alphabet) for _ in range(32)).encode())
    apiv3_key = apiv3_path.read_text().strip()
    if len(apiv3_key.encode()) != 32:
        raise ValueError(f"{apiv3_path}: the APIv3 key must be exactly 32 bytes")
    return PlatformKeys(private_pem, public_pem, id_path.read_text().strip(), apiv3_key)


def direct_keys_dir(keys_dir: str | Path, mchid: str) -> Path:
    """The directory of a direct-mode merchant's keys: ``<keys_dir>/direct/<mchid>``."""
    return Path(keys_dir) / DIRECT_DIR / mchid


def ensure_direct_keys(keys_dir: str | Path, mchids: Iterable[str]) -> dict[str, PlatformKeys]:
    """Each direct merchant's keys (``mchids``: created when missing), and those of any merchant
    whose keys are already there although it is no longer listed: its trades' notifications
    (pending deliveries, refunds settling later) are still signed with its own keys."""
    wanted = set(mchids)
    root = Path(keys_dir) / DIRECT_DIR
    if root.is_dir():
        wanted.update(
            entry.name
            for entry in root.iterdir()
            if _MCHID_DIR.match(entry.name) and (entry / PRIVATE_KEY_FILE).is_file()
        )
    return {mchid: ensure_keys(direct_keys_dir(keys_dir, mchid)) for mchid in sorted(wanted)}


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
