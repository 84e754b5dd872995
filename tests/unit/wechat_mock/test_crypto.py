"""rc_common.wechatpay_crypto: WeChat's signature and resource encryption, checked against the
formulas WeChat documents and against the wechatpayv3 SDK's own primitives."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from rc_common import wechatpay_crypto as crypto

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
PUBLIC = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
APIV3 = "0123456789abcdefghijklmnopqrstuv"


def test_signature_is_pkcs1v15_sha256_over_timestamp_nonce_body_lines() -> None:
    body = '{"id":"x","summary":"支付成功"}'
    signature = crypto.sign(PRIVATE, 1700000000, "NONCE1", body)
    message = f"1700000000\nNONCE1\n{body}\n".encode()
    KEY.public_key().verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())


def test_verify_accepts_the_signature_and_refuses_any_change() -> None:
    body = b'{"a":1}'
    signature = crypto.sign(PRIVATE, "1700000000", "N", body)
    assert crypto.verify(PUBLIC, "1700000000", "N", body, signature)
    assert not crypto.verify(PUBLIC, "1700000001", "N", body, signature)
    assert not crypto.verify(PUBLIC, "1700000000", "M", body, signature)
    assert not crypto.verify(PUBLIC, "1700000000", "N", b'{"a":2}', signature)
    assert not crypto.verify(PUBLIC, "1700000000", "N", body, "not base64!")


def test_the_sdk_primitive_verifies_our_signature() -> None:
    from wechatpayv3.utils import rsa_verify

    body = '{"summary":"退款成功"}'
    signature = crypto.sign(PRIVATE, 1700000000, "N2", body)
    assert rsa_verify("1700000000", "N2", body, signature, KEY.public_key())


@settings(max_examples=25, deadline=None)
@given(plaintext=st.text(), associated=st.sampled_from(["transaction", "refund", ""]))
def test_resource_decrypts_to_its_plaintext(plaintext: str, associated: str) -> None:
    resource = crypto.encrypt_resource(APIV3, plaintext, associated, original_type="transaction")
    assert resource["algorithm"] == "AEAD_AES_256_GCM" and len(resource["nonce"]) == 12
    assert crypto.decrypt_resource(APIV3, resource) == plaintext.encode()


def test_resource_is_aes_256_gcm_with_the_tag_appended_as_wechat_documents() -> None:
    resource = crypto.encrypt_resource(APIV3, "hello", "refund", nonce="abcdefghijkl")
    raw = base64.b64decode(resource["ciphertext"])
    assert AESGCM(APIV3.encode()).decrypt(b"abcdefghijkl", raw, b"refund") == b"hello"
    from wechatpayv3.utils import aes_decrypt

    assert aes_decrypt("abcdefghijkl", resource["ciphertext"], "refund", APIV3) == "hello"


def test_resource_with_other_associated_data_or_key_does_not_decrypt() -> None:
    resource = crypto.encrypt_resource(APIV3, "secret", "transaction")
    with pytest.raises(ValueError):
        crypto.decrypt_resource(APIV3, dict(resource, associated_data="refund"))
    with pytest.raises(ValueError):
        crypto.decrypt_resource("v" * 32, resource)
    with pytest.raises(ValueError):
        crypto.encrypt_resource("short", "x", "refund")


def test_signed_headers_verify_and_probes_do_not() -> None:
    body = crypto.build_notification_body(
        notification_id="id-1", create_time="2026-11-26T12:00:00+08:00", event_type="TRANSACTION.SUCCESS",
        summary="支付成功", resource=crypto.encrypt_resource(APIV3, "{}", "transaction"),
    )
    headers = crypto.signed_headers(PRIVATE, "PUB_KEY_ID_1", body, timestamp=1700000000)
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert len(headers["Wechatpay-Nonce"]) == 32
    assert crypto.verify_headers(PUBLIC, "PUB_KEY_ID_1", headers, body)
    lower = {k.lower(): v for k, v in headers.items()}
    assert crypto.verify_headers(PUBLIC, "PUB_KEY_ID_1", lower, body)
    assert not crypto.verify_headers(PUBLIC, "PUB_KEY_ID_2", headers, body)
    probe = dict(headers, **{"Wechatpay-Signature": crypto.SIGN_TEST_PREFIX + headers["Wechatpay-Signature"]})
    assert not crypto.verify_headers(PUBLIC, "PUB_KEY_ID_1", probe, body)
    envelope, plain = crypto.open_notification(APIV3, body)
    assert envelope["event_type"] == "TRANSACTION.SUCCESS" and plain == {}
    assert json.loads(body)["summary"] == "支付成功"  # UTF-8, not \\u escapes
    assert "支付成功".encode() in body


@pytest.mark.parametrize(("stamp", "fresh"), [("1000", True), ("700", True), ("699", False), ("1301", False),
                                               ("abc", False), ("", False)])
def test_timestamp_freshness_allows_five_minutes_either_way(stamp: str, fresh: bool) -> None:
    assert crypto.timestamp_is_fresh(stamp, now_s=1000.0) is fresh
