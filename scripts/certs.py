"""Make a development CA and one certificate per service: ``python -m scripts.certs --out DIR``.

Writes ``DIR/ca.crt`` and ``DIR/ca.key`` (the CA; keep its key away from every service), and for
each name (default: recharge, card, wechat, ops, pos) a TLS directory ``DIR/<name>/`` with
``ca.crt``, ``tls.crt`` (CN = the name, SANs: the name, localhost, 127.0.0.1, ::1 and any
``--host``) and ``tls.key`` (mode 0600) — pass it as that process's ``--tls-dir``. The CN is the
identity ``rc_common.policy`` authorizes. An existing CA in ``DIR`` is reused (add a service
later without re-issuing the others); existing service certificates are replaced.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rc_common.policy import IDENTITIES
from rc_common.tls import CA_FILE, CERT_FILE, KEY_FILE

CA_KEY_FILE = "ca.key"
CA_NAME = "recharge-center development CA"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(out: Path, days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA in ``out`` (reused when ``ca.crt`` and ``ca.key`` are there, else made)."""
    cert_path, key_path = out / CA_FILE, out / CA_KEY_FILE
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey), "ca.key is not an EC key"
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME))
        .issuer_name(_name(CA_NAME))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    cert_path.write_bytes(_pem(cert))
    return cert, key


def make_service_cert(
    out: Path,
    name: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    days: int,
    hosts: Sequence[str] = (),
) -> Path:
    """``out/<name>/`` with ca.crt, tls.crt (CN=name, server and client auth) and tls.key."""
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(name), x509.DNSName("localhost")]
    for host in ("127.0.0.1", "::1", *hosts):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CA_FILE).write_bytes(_pem(ca_cert))
    (folder / CERT_FILE).write_bytes(_pem(cert))
    _write_key(folder / KEY_FILE, key)
    return folder


def make_certs(
    out: Path, names: Sequence[str] = IDENTITIES, *, days: int = 365, hosts: Sequence[str] = ()
) -> None:
    ca = make_ca(out, days)
    for name in names:
        make_service_cert(out, name, ca, days, hosts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.certs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for the CA and one TLS directory per name")
    parser.add_argument("--names", default=",".join(IDENTITIES), help="comma-separated identities (CNs)")
    parser.add_argument("--host", action="append", default=[], help="an extra SAN (DNS name or IP)")
    parser.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.names.split(",") if n.strip()]
    out = Path(args.out)
    make_certs(out, names, days=args.days, hosts=args.host)
    for name in names:
        print(f"{name:9} --tls-dir {out / name}")
    print(f"CA: {out / CA_FILE} (its key {out / CA_KEY_FILE} stays here, on no service)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
