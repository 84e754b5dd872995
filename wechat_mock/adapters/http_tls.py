"""TLS of the HTTP facade: the certificate and key of ``--http-tls-dir`` (``tls.crt``,
``tls.key``), or a throwaway self-signed certificate made at start for 127.0.0.1, ::1 and
localhost (plus the listen host), written to ``<keys-dir>/http-tls/`` so a test client can trust
it (``tls.crt``; the key is owner-only). A restart keeps the one there while it still covers those
names for at least a day (clients that trusted it keep working across restarts); otherwise a new
one is made."""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
THROWAWAY_DIR = "http-tls"
#: How long a throwaway certificate is valid (it is replaced at every start anyway).
THROWAWAY_DAYS = 30


@dataclass(frozen=True)
class HttpTls:
    cert_file: Path
    key_file: Path
    #: True when the simulator made it at start (self-signed, for tests).
    throwaway: bool

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def from_dir(tls_dir: str | Path) -> HttpTls:
    """The certificate and key of ``--http-tls-dir``; ValueError naming a missing file."""
    directory = Path(tls_dir)
    cert, key = directory / CERT_FILE, directory / KEY_FILE
    for path in (cert, key):
        if not path.is_file():
            raise ValueError(f"--http-tls-dir: {path} is missing (needs {CERT_FILE} and {KEY_FILE})")
    return HttpTls(cert, key, throwaway=False)


def throwaway(keys_dir: str | Path, host: str = "127.0.0.1") -> HttpTls:
    """A fresh self-signed certificate for the loopback names (and ``host``), in
    ``<keys-dir>/http-tls/``."""
    directory = Path(keys_dir) / THROWAWAY_DIR
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    key_path, cert_path = directory / KEY_FILE, directory / CERT_FILE
    names = _names(host)
    if _still_good(cert_path, key_path, names):
        return HttpTls(cert_path, key_path, throwaway=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wechat_mock throwaway")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=THROWAWAY_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(key_pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return HttpTls(cert_path, key_path, throwaway=True)


def _names(host: str) -> list[x509.GeneralName]:
    """localhost, 127.0.0.1, ::1 and the listen host (an address or a name)."""
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    addresses = {"127.0.0.1", "::1"}
    bare = host.strip("[]")
    try:
        addresses.add(str(ipaddress.ip_address(bare)))
    except ValueError:
        if bare and bare != "localhost":
            names.append(x509.DNSName(bare))
    names.extend(x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(addresses))
    return names


def _still_good(cert_path: Path, key_path: Path, names: list[x509.GeneralName]) -> bool:
    """An earlier throwaway certificate that covers ``names`` for at least one more day, with
    its key beside it."""
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        covered = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, x509.ExtensionNotFound):
        return False
    fresh = cert.not_valid_after_utc - datetime.now(UTC) > timedelta(days=1)
    same_key = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return fresh and same_key and all(name in covered for name in names)
