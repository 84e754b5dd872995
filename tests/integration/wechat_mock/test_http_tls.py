"""The HTTP facade's certificates: ``--http-tls-dir``, or the throwaway one in
``<keys-dir>/http-tls/`` (kept across restarts while it still fits, so clients that trust it
keep working)."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509

from wechat_mock.adapters import http_tls


def _names(cert_file: Path) -> list[x509.GeneralName]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


def test_the_throwaway_certificate_covers_loopback_and_is_kept_across_restarts(tmp_path: Path) -> None:
    first = http_tls.throwaway(tmp_path)
    assert first.throwaway and first.cert_file == tmp_path / "http-tls" / "tls.crt"
    names = _names(first.cert_file)
    assert x509.DNSName("localhost") in names
    for address in ("127.0.0.1", "::1"):
        assert x509.IPAddress(ipaddress.ip_address(address)) in names
    assert stat.S_IMODE(first.key_file.stat().st_mode) == 0o600
    pem = first.cert_file.read_bytes()
    first.server_context()  # loads: the key matches the certificate

    again = http_tls.throwaway(tmp_path)
    assert again.cert_file.read_bytes() == pem  # a restart keeps it

    other_host = http_tls.throwaway(tmp_path, "10.1.2.3")  # a listen host it does not cover yet
    assert other_host.cert_file.read_bytes() != pem
    assert x509.IPAddress(ipaddress.ip_address("10.1.2.3")) in _names(other_host.cert_file)
    other_host.server_context()


def test_a_broken_throwaway_certificate_is_replaced(tmp_path: Path) -> None:
    made = http_tls.throwaway(tmp_path)
    made.cert_file.write_text("not a certificate")
    replaced = http_tls.throwaway(tmp_path)
    replaced.server_context()
    pem = replaced.cert_file.read_bytes()
    other = http_tls.throwaway(tmp_path / "other")
    made.key_file.write_bytes(other.key_file.read_bytes())  # a key that is not the certificate's
    again = http_tls.throwaway(tmp_path)
    assert again.cert_file.read_bytes() != pem
    again.server_context()


def test_http_tls_dir_needs_both_files(tmp_path: Path) -> None:
    made = http_tls.throwaway(tmp_path)
    loaded = http_tls.from_dir(made.cert_file.parent)
    assert not loaded.throwaway
    loaded.server_context()
    made.key_file.unlink()
    with pytest.raises(ValueError, match=r"tls\.key is missing"):
        http_tls.from_dir(made.cert_file.parent)
