"""The simulator's keys dir: WeChat's private side in ``platform/``, and merchant bundles holding
only what WeChat hands a real merchant (issue 14, A3)."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID

from wechat_mock.adapters import keys as k
from wechat_mock.adapters.keys import (
    ensure_direct_keys,
    ensure_keys,
    load_keys,
    merchant_bundle_dir,
    platform_dir,
)

PROVIDER, DIRECT = "1900000109", "1900000701"
#: Exactly what a merchant holds: WeChat's public key and its id, the APIv3 key, its own mchid,
#: private key and certificate (with the serial its signed requests name).
BUNDLE_FILES = {
    "platform_public_key.pem",
    "public_key_id.txt",
    "apiv3_key.txt",
    "mchid.txt",
    "apiclient_key.pem",
    "apiclient_cert.pem",
    "apiclient_serial.txt",
}
PEM_PRIVATE = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)


def spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def private_keys_in(directory: Path) -> dict[Path, bytes]:
    """Every PEM private key in the directory's files: its public half, by file."""
    found = {}
    for path in directory.iterdir():
        if path.is_file():
            for block in PEM_PRIVATE.findall(path.read_bytes()):
                found[path] = spki(serialization.load_pem_private_key(block, None).public_key())
    return found


def files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.is_file()}


@pytest.mark.parametrize("direct", [False, True], ids=["provider", "direct merchant"])
def test_a_merchant_bundle_holds_what_a_merchant_holds_and_no_private_key_of_wechats(
    tmp_path: Path, direct: bool
) -> None:
    keys = ensure_direct_keys(tmp_path, [DIRECT])[DIRECT] if direct else ensure_keys(tmp_path, PROVIDER)
    mchid = DIRECT if direct else PROVIDER
    bundle = merchant_bundle_dir(tmp_path, DIRECT if direct else "")
    assert files(bundle) == BUNDLE_FILES
    platform_public = spki(serialization.load_pem_public_key(keys.public_key_pem))
    # The only private key in the bundle is the merchant's own, and it is not WeChat's.
    assert set(private_keys_in(bundle)) == {bundle / "apiclient_key.pem"}
    assert platform_public not in private_keys_in(bundle).values()
    # WeChat's private key is on WeChat's side only.
    private = spki(serialization.load_pem_private_key(keys.private_key_pem, None).public_key())
    assert private == platform_public
    assert private_keys_in(platform_dir(tmp_path, DIRECT if direct else "")) == {
        platform_dir(tmp_path, DIRECT if direct else "") / "platform_private_key.pem": platform_public
    }
    # The copies WeChat hands out are its records.
    assert (bundle / "platform_public_key.pem").read_bytes() == keys.public_key_pem
    assert (bundle / "public_key_id.txt").read_text() == keys.public_key_id
    assert (bundle / "apiv3_key.txt").read_text() == keys.apiv3_key
    assert (bundle / "mchid.txt").read_text() == mchid == keys.mchid
    # The merchant's certificate: its own key's, for its mchid, with the serial the bundle names.
    cert = x509.load_pem_x509_certificate((bundle / "apiclient_cert.pem").read_bytes())
    own = serialization.load_pem_private_key((bundle / "apiclient_key.pem").read_bytes(), None)
    assert spki(cert.public_key()) == spki(own.public_key())
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [mchid]
    serial = (bundle / "apiclient_serial.txt").read_text()
    assert serial == format(cert.serial_number, "X") == keys.merchant_serial
    assert keys.merchant_cert_pem == (bundle / "apiclient_cert.pem").read_bytes()


def test_wechats_side_and_the_secrets_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    ensure_direct_keys(tmp_path, [DIRECT])
    for directory in (platform_dir(tmp_path), platform_dir(tmp_path, DIRECT)):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE((directory / "platform_private_key.pem").stat().st_mode) == 0o600
    for bundle in (merchant_bundle_dir(tmp_path), merchant_bundle_dir(tmp_path, DIRECT)):
        for secret in ("apiclient_key.pem", "apiv3_key.txt"):
            assert stat.S_IMODE((bundle / secret).stat().st_mode) == 0o600, bundle / secret


def test_keys_are_created_once_then_reused_and_read_without_writing(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_keys(tmp_path)  # never created: nothing to read, and nothing is made
    assert not any(tmp_path.iterdir())
    first = ensure_keys(tmp_path)
    direct = ensure_direct_keys(tmp_path, [DIRECT])
    assert ensure_keys(tmp_path) == first == load_keys(tmp_path)
    assert ensure_direct_keys(tmp_path, []) == direct  # still loaded when no longer listed
    assert load_keys(tmp_path, DIRECT) == direct[DIRECT]
    assert direct[DIRECT].public_key_id != first.public_key_id
    assert direct[DIRECT].apiv3_key != first.apiv3_key


def test_a_bundle_copy_that_drifted_is_rewritten_from_wechats_records(tmp_path: Path) -> None:
    keys = ensure_keys(tmp_path)
    bundle = merchant_bundle_dir(tmp_path)
    (bundle / "public_key_id.txt").write_text("PUB_KEY_ID_STALE")
    (bundle / "platform_public_key.pem").unlink()
    assert ensure_keys(tmp_path) == keys
    assert (bundle / "public_key_id.txt").read_text() == keys.public_key_id
    assert (bundle / "platform_public_key.pem").read_bytes() == keys.public_key_pem


def test_another_mchid_gets_a_certificate_of_its_own(tmp_path: Path) -> None:
    before = ensure_keys(tmp_path, PROVIDER)
    after = ensure_keys(tmp_path, "1900000999")
    assert (after.mchid, before.mchid) == ("1900000999", PROVIDER)
    assert after.merchant_serial != before.merchant_serial
    assert (after.public_key_id, after.apiv3_key) == (before.public_key_id, before.apiv3_key)  # WeChat's


def write_flat(directory: Path, tag: str) -> tuple[bytes, str, str]:
    """A keys dir as older versions wrote it (the recharge center read this very directory)."""
    directory.mkdir(parents=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_id, apiv3 = f"PUB_KEY_ID_{tag}", tag.ljust(32, "0")
    (directory / k.PRIVATE_KEY_FILE).write_bytes(private)
    (directory / k.PUBLIC_KEY_FILE).write_bytes(public)
    (directory / k.PUBLIC_KEY_ID_FILE).write_text(key_id)
    (directory / k.APIV3_KEY_FILE).write_text(apiv3)
    return private, key_id, apiv3


def test_the_flat_layout_of_older_versions_is_adopted_keeping_keys_and_ids(tmp_path: Path) -> None:
    provider = write_flat(tmp_path / "keys", "PROVIDER")
    direct = write_flat(tmp_path / "keys" / "direct" / DIRECT, "DIRECT")
    keys_dir = tmp_path / "keys"
    adopted = ensure_keys(keys_dir)
    adopted_direct = ensure_direct_keys(keys_dir, [])  # found on WeChat's side, although not listed
    assert (adopted.private_key_pem, adopted.public_key_id, adopted.apiv3_key) == provider
    assert set(adopted_direct) == {DIRECT}
    got = adopted_direct[DIRECT]
    assert (got.private_key_pem, got.public_key_id, got.apiv3_key) == direct
    # Nothing of the flat layout is left where the recharge center used to look.
    assert {p.name for p in keys_dir.iterdir()} == {"platform", "merchant"}
    assert files(merchant_bundle_dir(keys_dir, DIRECT)) == BUNDLE_FILES
