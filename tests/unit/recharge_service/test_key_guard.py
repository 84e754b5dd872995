"""The recharge center refuses a keys dir holding WeChat's platform private key (issue 14, A3):
found by the simulator's file name and by content, whatever the file is called."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from recharge_service.adapters import key_guard
from recharge_service.adapters.key_guard import (
    NotABundle,
    PlatformPrivateKeyFound,
    refuse_platform_private_key,
)
from wechat_mock.adapters.keys import ensure_direct_keys, ensure_keys, merchant_bundle_dir, platform_dir

DIRECT = "1900000701"


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """The simulator's keys dir: the provider's keys and a direct merchant's."""
    ensure_keys(tmp_path)
    ensure_direct_keys(tmp_path, [DIRECT])
    return tmp_path


def refused_file(directory: Path) -> Path:
    with pytest.raises(PlatformPrivateKeyFound) as refused:
        refuse_platform_private_key(directory)
    assert refused.value.event == "wechat_platform_private_key_refused"
    assert refused.value.fields == {"file": str(refused.value.path)}
    assert str(refused.value.path) in str(refused.value)
    return refused.value.path


def pem_pkcs8(pem: bytes) -> bytes:
    return pem


def pem_pkcs1(pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(pem, None)
    pkcs1 = serialization.PrivateFormat.TraditionalOpenSSL  # "BEGIN RSA PRIVATE KEY"
    return key.private_bytes(serialization.Encoding.PEM, pkcs1, serialization.NoEncryption())


def der_pkcs8(pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(pem, None)
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def amid_other_text(pem: bytes) -> bytes:
    return b"# backup of the keys, do not lose\n" + pem + b"\nsome trailing notes\n"


def test_the_merchant_bundles_pass(keys_dir: Path) -> None:
    refuse_platform_private_key(merchant_bundle_dir(keys_dir))  # the provider's, direct ones below it
    refuse_platform_private_key(merchant_bundle_dir(keys_dir, DIRECT))


def test_a_directory_that_does_not_exist_holds_nothing(tmp_path: Path) -> None:
    refuse_platform_private_key(tmp_path / "not-there")


def test_the_simulators_whole_keys_dir_is_refused_naming_the_private_key(keys_dir: Path) -> None:
    assert refused_file(keys_dir).name == "platform_private_key.pem"
    assert refused_file(platform_dir(keys_dir)) == platform_dir(keys_dir) / "platform_private_key.pem"
    direct = platform_dir(keys_dir, DIRECT)
    assert refused_file(direct) == direct / "platform_private_key.pem"


def test_a_file_named_as_the_simulator_names_its_private_key_is_refused(keys_dir: Path) -> None:
    bundle = merchant_bundle_dir(keys_dir)
    (bundle / "platform_private_key.pem").write_text("not even a key")
    assert refused_file(bundle) == bundle / "platform_private_key.pem"


@pytest.mark.parametrize("encode", [pem_pkcs8, pem_pkcs1, der_pkcs8, amid_other_text])
@pytest.mark.parametrize("direct", ["", DIRECT], ids=["provider", "direct"])
def test_a_copy_of_wechats_private_key_under_any_name_is_refused_by_its_content(
    keys_dir: Path, direct: str, encode: Callable[[bytes], bytes]
) -> None:
    private = (platform_dir(keys_dir, direct) / "platform_private_key.pem").read_bytes()
    bundle = merchant_bundle_dir(keys_dir, direct)
    copy = bundle / "backup.key"
    copy.write_bytes(encode(private))
    assert refused_file(bundle) == copy
    if direct:  # found from the provider's bundle too, the direct ones being below it
        assert refused_file(merchant_bundle_dir(keys_dir)) == copy


def test_a_private_key_that_is_not_wechats_is_no_reason_to_refuse(keys_dir: Path) -> None:
    bundle = merchant_bundle_dir(keys_dir)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (bundle / "other_key.pem").write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    refuse_platform_private_key(bundle)  # like the merchant's own apiclient_key.pem


def test_a_directory_too_large_to_examine_in_full_is_refused_not_half_examined(
    keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = merchant_bundle_dir(keys_dir)  # 7 files of its own, 7 of the direct merchant below
    monkeypatch.setattr(key_guard, "MAX_FILES", 14)
    refuse_platform_private_key(bundle)
    (bundle / "one-too-many.txt").write_text("")
    with pytest.raises(NotABundle) as refused:
        refuse_platform_private_key(bundle)
    assert refused.value.event == "wechat_keys_dir_refused"
    assert refused.value.fields == {"file": str(bundle)}
