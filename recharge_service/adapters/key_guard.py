"""The recharge center holds only what a real merchant holds (promise I8): it refuses a keys dir
that holds WeChat's platform private key.

The WeChat simulator keeps that key in ``<keys-dir>/platform/`` and writes a merchant bundle for
the product in ``<keys-dir>/merchant/`` (platform public key, its id, APIv3 key, the merchant's
own key). Whoever can read WeChat's private key can sign a notification the recharge center
believes ("paid"), so a recharge center pointed at a directory holding it — the simulator's
whole keys dir, its ``platform/``, a copy — does not start, and a direct merchant's keys dir
holding it is not loaded.

Found by name (the simulator's ``platform_private_key.pem``) and by content: any unencrypted
private key (PEM or DER) whose public half is a platform public key (``platform_public_key.pem``)
of the same tree. The merchant's own ``apiclient_key.pem`` is a private key too, but not WeChat's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from rc_common.launcher import StartRefused

#: How the WeChat simulator names its platform private key, and the bundle's platform public key.
PLATFORM_PRIVATE_KEY_FILE = "platform_private_key.pem"
PLATFORM_PUBLIC_KEY_FILE = "platform_public_key.pem"
#: Directories looked into below the keys dir (a bundle's ``direct/<mchid>/``, and the simulator's
#: ``platform/direct/<mchid>/`` when pointed at its whole keys dir).
MAX_DEPTH = 4
#: Larger files are no key (an RSA-4096 PEM is about 3.3 KB).
MAX_KEY_FILE_BYTES = 64 * 1024
#: More files than this is no merchant bundle (seven files a merchant): refused, not half-examined.
MAX_FILES = 20_000
_PEM_PRIVATE = re.compile(rb"-----BEGIN ((?:RSA |EC )?PRIVATE KEY)-----.+?-----END \1-----", re.DOTALL)
_PEM_PUBLIC = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


class KeysDirRefused(StartRefused):
    """A keys dir the recharge center will not read (``path``: the file or directory at fault)."""

    def __init__(self, event: str, path: Path, message: str) -> None:
        super().__init__(event, message, file=str(path))
        self.path = path


class PlatformPrivateKeyFound(KeysDirRefused):
    """A keys dir the recharge center reads holds WeChat's platform private key (``file``)."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            "wechat_platform_private_key_refused",
            path,
            f"{path} is {why}: the recharge center holds only a merchant bundle (the WeChat "
            "simulator writes it in <keys-dir>/merchant/); remove the file or point "
            "--wechat-keys-dir at the bundle",
        )


class NotABundle(KeysDirRefused):
    """A keys dir far too large to be a merchant bundle (it could not be examined in full)."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            "wechat_keys_dir_refused",
            path,
            f"{path} holds more than {MAX_FILES} files: not a merchant bundle; point "
            "--wechat-keys-dir at the bundle the WeChat simulator writes in <keys-dir>/merchant/",
        )


def refuse_platform_private_key(keys_dir: str | Path) -> None:
    """Raise :class:`PlatformPrivateKeyFound` when ``keys_dir`` (or a directory below it) holds
    WeChat's platform private key, :class:`NotABundle` when it is too large to tell; a directory
    that does not exist holds nothing."""
    files: list[Path] = []
    for path in _files(Path(keys_dir)):
        if len(files) == MAX_FILES:
            raise NotABundle(Path(keys_dir))
        files.append(path)
    for path in files:
        if path.name == PLATFORM_PRIVATE_KEY_FILE:
            raise PlatformPrivateKeyFound(path, "WeChat's platform private key (the simulator's file name)")
    platform = {der for path in files if path.name == PLATFORM_PUBLIC_KEY_FILE for der in _public_keys(path)}
    for path in files:
        if platform & set(_private_keys_public_halves(path)):
            raise PlatformPrivateKeyFound(path, "the private key of WeChat's platform public key")


def _files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for directory, subdirs, names in os.walk(root):  # symlinked directories are not followed
        if len(Path(directory).relative_to(root).parts) >= MAX_DEPTH:
            subdirs.clear()
        for name in names:
            path = Path(directory) / name
            if path.is_file():
                yield path


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_KEY_FILE_BYTES:
            return b""
        return path.read_bytes()
    except OSError:  # unreadable by this process: nor can it sign with it
        return b""


def _public_keys(path: Path) -> Iterator[bytes]:
    for block in _PEM_PUBLIC.finditer(_read(path)):
        try:
            key = serialization.load_pem_public_key(block.group(0))
        except (ValueError, UnsupportedAlgorithm):
            continue
        yield _der(key)


def _private_keys_public_halves(path: Path) -> Iterator[bytes]:
    """The public half (SubjectPublicKeyInfo DER) of every unencrypted private key in ``path``."""
    data = _read(path)
    if b"-----BEGIN" in data:
        candidates = [(serialization.load_pem_private_key, m.group(0)) for m in _PEM_PRIVATE.finditer(data)]
    else:
        candidates = [(serialization.load_der_private_key, data)] if data else []
    for load, blob in candidates:
        try:
            key = load(blob, None)
        except (ValueError, TypeError, UnsupportedAlgorithm):  # not a key, or encrypted
            continue
        yield _der(key.public_key())


def _der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
