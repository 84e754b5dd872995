"""Transport security: one ``--tls-dir`` per process, mutual TLS between every caller and server.

A TLS directory holds three PEM files (``python -m scripts.certs --out DIR`` makes one per
service under ``DIR/<name>/``)::

    ca.crt    the CA every peer's certificate must chain to (the only trust anchor)
    tls.crt   this process's certificate; its CN is its identity (recharge, card, wechat, ops, pos)
    tls.key   its private key (never logged, never on a command line)

Servers require a client certificate (``require_client_auth``); clients present theirs and verify
the server's against the same CA. Without a TLS directory a server serves plaintext, and only on a
loopback address (``require_loopback_when_plaintext``): development mode.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc

from rc_common.settings import InvalidSetting

CA_FILE = "ca.crt"
CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"


class TlsConfigError(ValueError):
    """A TLS directory that cannot be used (a file missing, empty) or a plaintext non-loopback listen."""


@dataclass(frozen=True, repr=False)
class TlsFiles:
    """The PEM bytes of one TLS directory (``repr`` leaves the key out of logs)."""

    ca: bytes
    cert: bytes
    key: bytes
    source: str = ""

    def __repr__(self) -> str:
        return f"TlsFiles({self.source!r})"

    @classmethod
    def load(cls, tls_dir: str | Path) -> TlsFiles:
        """Read ``ca.crt``, ``tls.crt`` and ``tls.key`` from ``tls_dir``; raises TlsConfigError
        naming the file that is missing or empty."""
        folder = Path(tls_dir)
        parts: list[bytes] = []
        for name in (CA_FILE, CERT_FILE, KEY_FILE):
            path = folder / name
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise TlsConfigError(f"TLS directory {folder}: cannot read {name} ({exc.strerror})") from None
            if b"-----BEGIN" not in data:
                raise TlsConfigError(f"TLS directory {folder}: {name} holds no PEM block")
            parts.append(data)
        return cls(parts[0], parts[1], parts[2], str(folder))


def load_optional(tls_dir: str) -> TlsFiles | None:
    """``TlsFiles.load(tls_dir)``, or None for an empty setting (development mode)."""
    return TlsFiles.load(tls_dir) if tls_dir else None


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Server side of mutual TLS: present our certificate, require and verify the client's."""
    return grpc.ssl_server_credentials(
        [(files.key, files.cert)], root_certificates=files.ca, require_client_auth=True
    )


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """Client side of mutual TLS: verify the server against our CA, present our certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=files.ca, private_key=files.key, certificate_chain=files.cert
    )


@functools.lru_cache(maxsize=1024)
def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (``127.0.0.0/8``, ``::1``, ``[::1]``).
    Cached: the policy check asks it on every call, about a few peer hosts."""
    bare = host.strip("[]")
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def plaintext_refusal(listen: str) -> str:
    """Why a plaintext server may not listen on ``listen`` ("" when it may: a loopback address)."""
    if is_loopback(listen.rpartition(":")[0]):
        return ""
    return (
        f"refusing to listen on {listen} without TLS: plaintext is for loopback addresses "
        "(127.0.0.1, ::1, localhost) only; pass --tls-dir (see python -m scripts.certs)"
    )


def require_loopback_when_plaintext(listen: str, files: TlsFiles | None) -> None:
    """Refuse (TlsConfigError) a plaintext server on anything but a loopback address."""
    refusal = plaintext_refusal(listen) if files is None else ""
    if refusal:
        raise TlsConfigError(refusal)


def check_listen_setting(listen: str, tls_dir: str) -> None:
    """A service's settings check: no ``--tls-dir`` means a loopback ``--listen`` (InvalidSetting)."""
    refusal = "" if tls_dir else plaintext_refusal(listen)
    if refusal:
        raise InvalidSetting("tls_dir", refusal)
