"""Opening a WeChat notification: only a fresh, genuine, decryptable one passes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rc_common import wechatpay_crypto as crypto
from recharge_service.adapters.wechat_notifications import NotificationOpener
from recharge_service.service_layer.notifications import BadNotification
from wechat_mock.adapters.keys import PlatformKeys, ensure_keys, merchant_bundle_dir

NOW = 1_790_000_000


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PlatformKeys]:
    directory = tmp_path_factory.mktemp("keys")
    keys = ensure_keys(directory)
    return merchant_bundle_dir(directory), keys  # what the recharge center reads; what WeChat signs with


def notification(keys: PlatformKeys, timestamp: int = NOW) -> tuple[dict[str, str], bytes]:
    resource = crypto.encrypt_resource(keys.apiv3_key, json.dumps({"out_trade_no": "R1"}), "transaction")
    body = crypto.build_notification_body(
        notification_id="n-1",
        create_time="2026-11-26T12:00:00+08:00",
        event_type="TRANSACTION.SUCCESS",
        summary="支付成功",
        resource=resource,
    )
    return crypto.signed_headers(keys.private_key_pem, keys.public_key_id, body, timestamp=timestamp), body


def opener(directory: Path, skew: float = 300) -> NotificationOpener:
    return NotificationOpener(directory, skew, clock=lambda: NOW)


def test_a_genuine_notification_opens_to_its_event_and_resource(keys: tuple[Path, PlatformKeys]) -> None:
    headers, body = notification(keys[1])
    opened = opener(keys[0]).open({k.lower(): v for k, v in headers.items()}, body)  # header names: any case
    assert (opened.notification_id, opened.event_type, opened.resource) == (
        "n-1",
        "TRANSACTION.SUCCESS",
        {"out_trade_no": "R1"},
    )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({crypto.HEADER_SIGNATURE: "WECHATPAY/SIGNTEST/xyz"}, "SIGNTEST"),
        ({crypto.HEADER_SIGNATURE: ""}, "missing"),
        ({crypto.HEADER_SIGNATURE_TYPE: "WECHATPAY2-SM2-WITH-SM3"}, "Signature-Type"),
        ({crypto.HEADER_SERIAL: "PUB_KEY_ID_NOT_OURS"}, "Serial"),
        ({crypto.HEADER_NONCE: "ANOTHERNONCE"}, "does not verify"),
    ],
)
def test_bad_headers_are_refused_with_the_reason(
    keys: tuple[Path, PlatformKeys], change: dict[str, str], why: str
) -> None:
    headers, body = notification(keys[1])
    with pytest.raises(BadNotification, match=why):
        opener(keys[0]).open({**headers, **change}, body)


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_more_than_the_skew_away_is_refused(keys: tuple[Path, PlatformKeys], offset: int) -> None:
    headers, body = notification(keys[1], timestamp=NOW + offset)
    with pytest.raises(BadNotification, match="off"):
        opener(keys[0]).open(headers, body)
    fresh_headers, fresh_body = notification(keys[1], timestamp=NOW + offset // 2)
    assert opener(keys[0]).open(fresh_headers, fresh_body).event_type == "TRANSACTION.SUCCESS"


def test_a_changed_body_does_not_verify(keys: tuple[Path, PlatformKeys]) -> None:
    headers, body = notification(keys[1])
    with pytest.raises(BadNotification, match="does not verify"):
        opener(keys[0]).open(headers, body.replace(b"n-1", b"n-2"))


def test_keys_missing_at_start_are_loaded_on_the_first_notification(
    tmp_path: Path, keys: tuple[Path, PlatformKeys]
) -> None:
    late = opener(tmp_path / "not-yet")
    headers, body = notification(keys[1])
    with pytest.raises(BadNotification, match="keys not available"):
        late.open(headers, body)
    (tmp_path / "not-yet").mkdir()
    for name in ("platform_public_key.pem", "public_key_id.txt", "apiv3_key.txt"):
        (tmp_path / "not-yet" / name).write_bytes((keys[0] / name).read_bytes())
    assert late.open(headers, body).event_type == "TRANSACTION.SUCCESS"


def test_the_real_clock_is_used_by_default(keys: tuple[Path, PlatformKeys]) -> None:
    headers, body = notification(keys[1], timestamp=int(time.time()))
    assert NotificationOpener(keys[0], 300).open(headers, body).resource == {"out_trade_no": "R1"}


def test_a_refused_notification_still_names_its_order_when_the_resource_decrypts(
    keys: tuple[Path, PlatformKeys],
) -> None:
    headers, body = notification(keys[1], timestamp=NOW - 3600)
    with pytest.raises(BadNotification) as refused:
        opener(keys[0]).open(headers, body)
    assert refused.value.order_no == "R1"
    garbage = body.replace(b'"ciphertext":"', b'"ciphertext":"AAAA', 1)
    with pytest.raises(BadNotification) as unreadable:
        opener(keys[0]).open(headers, garbage)
    assert unreadable.value.order_no == ""
