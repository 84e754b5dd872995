"""Merchant request signatures (APIv3 ``Authorization``), checked against WeChat's own Python SDK
(``wechatpayv3.utils.build_authorization``) in both directions."""

from __future__ import annotations

import json
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3.utils import build_authorization

from rc_common import wechatpay_crypto as crypto

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
PUBLIC_PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
PATH = "/v3/pay/transactions/out-trade-no/R1?mchid=1900000109"
BODY = json.dumps({"mchid": "1900000109", "out_trade_no": "R1"})


def test_the_sdk_s_signature_is_verified_by_ours() -> None:
    header = build_authorization(PATH, "GET", "1900000109", "5157F09EFDC096DE15EBE81A47057A72", KEY)
    signed = crypto.parse_authorization(header)
    assert signed is not None and signed.mchid == "1900000109"
    assert crypto.verify_request(PUBLIC_PEM, signed, "GET", PATH, b"")
    assert not crypto.verify_request(PUBLIC_PEM, signed, "GET", PATH + "&x=1", b"")  # another URL
    header = build_authorization("/v3/pay/transactions/jsapi", "POST", "1900000109", "S", KEY, data=BODY)
    signed = crypto.parse_authorization(header)
    assert signed is not None
    assert crypto.verify_request(PUBLIC_PEM, signed, "POST", "/v3/pay/transactions/jsapi", BODY)
    assert not crypto.verify_request(PUBLIC_PEM, signed, "POST", "/v3/pay/transactions/jsapi", BODY + " ")


def test_ours_is_the_sdk_s_byte_for_byte() -> None:
    timestamp, nonce = int(time.time()), "593BEC0C930BF1AFEB40B4A08C8FB242"
    ours = crypto.authorization(
        PRIVATE_PEM,
        "1900000109",
        "S1",
        "POST",
        "/v3/refund/domestic/refunds",
        BODY,
        timestamp=timestamp,
        nonce=nonce,
    )
    theirs = build_authorization("/v3/refund/domestic/refunds", "POST", "1900000109", "S1", KEY, BODY, nonce)
    if str(timestamp) in theirs:  # (the SDK reads the clock itself: equal unless a second passed)
        assert ours == theirs


def test_a_malformed_or_incomplete_header_is_none() -> None:
    good = crypto.authorization(PRIVATE_PEM, "1", "S", "GET", "/v3/x", timestamp=1, nonce="N")
    assert crypto.parse_authorization(good) == crypto.RequestSignature(
        "1", "N", good.split('signature="')[1].split('"')[0], "1", "S"
    )
    for bad in (
        "",
        "Bearer x",
        good.replace("WECHATPAY2", "WECHATPAY3"),
        good.replace(',serial_no="S"', ""),
        good + ',mchid="2"',
        good.replace('mchid="1"', 'mchid=""'),
        good + ",evil=1",
    ):
        assert crypto.parse_authorization(bad) is None, bad
