"""Notifications against a running simulator, received by a fake merchant: WeChat's body and
headers, signature and encryption (checked with our code and with WeChat's own Python SDK),
retries on the schedule, fresh signatures, giving up, and the notification faults."""

from __future__ import annotations

import asyncio
from pathlib import Path

from protos.faults.v1 import faults_pb2
from rc_common import wechatpay_crypto as crypto
from tests.integration.wechat_mock.conftest import Launcher, Running
from tests.integration.wechat_mock.fakes import (
    SP_APPID,
    SP_MCHID,
    SUB_MCHID,
    FakeMerchant,
    Policy,
    Received,
    Stubs,
    always,
    rule,
)
from tests.waiting import eventually
from wechat_mock.adapters.keys import PlatformKeys, merchant_bundle_dir
from wechat_mock.domain.notifications import DeliveryStatus, Notification

TX = "TRANSACTION.SUCCESS"


async def records(wechat: Running, out_trade_no: str) -> list[Notification]:
    async with wechat.simulator.ctx.uow(readonly=True) as uow:
        return await uow.notifications.list(out_trade_no)


def fail_first(count: int, then: str = "SUCCESS", first: str = "FAIL") -> Policy:
    return lambda _item, index: first if index < count else then


async def test_payment_notification_is_wechats_signed_encrypted_transaction(
    stubs: Stubs, merchant: FakeMerchant, keys: PlatformKeys
) -> None:
    paid = await stubs.paid("NT-0001", 1999)
    (item,) = await merchant.wait_count(1)
    headers = item.headers
    assert set(headers) == {
        "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial",
        "Wechatpay-Signature-Type", "Wechatpay-Signature",
    }
    assert headers["Wechatpay-Serial"] == keys.public_key_id
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert headers["Wechatpay-Timestamp"].isdigit()
    assert crypto.verify(keys.public_key_pem, headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"],
                         item.body, headers["Wechatpay-Signature"])
    envelope = item.envelope
    assert set(envelope) == {"id", "create_time", "resource_type", "event_type", "summary", "resource"}
    assert envelope["event_type"] == TX and envelope["resource_type"] == "encrypt-resource"
    assert envelope["create_time"].endswith("+08:00")
    resource = envelope["resource"]
    assert resource["algorithm"] == "AEAD_AES_256_GCM"
    assert resource["associated_data"] == "transaction" and resource["original_type"] == "transaction"
    assert len(resource["nonce"]) == 12
    plain = item.plain(keys.apiv3_key)
    assert plain == {  # partner mode (服务商): the provider and the sub-merchant, no mchid
        "sp_appid": SP_APPID,
        "sp_mchid": SP_MCHID,
        "sub_mchid": SUB_MCHID,
        "out_trade_no": "NT-0001",
        "transaction_id": paid.transaction_id,
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": paid.success_time,
        "payer": {"sp_openid": paid.payer_openid},
        "amount": {"total": 1999, "payer_total": 1999, "currency": "CNY", "payer_currency": "CNY"},
    }


async def test_signature_fails_when_the_body_is_tampered(
    stubs: Stubs, merchant: FakeMerchant, keys: PlatformKeys
) -> None:
    await stubs.paid("NT-0002", 100)
    (item,) = await merchant.wait_count(1)
    assert crypto.verify_headers(keys.public_key_pem, keys.public_key_id, item.headers, item.body)
    tampered = item.body.replace(b'"summary":"', b'"summary":"X')
    assert tampered != item.body
    assert not crypto.verify_headers(keys.public_key_pem, keys.public_key_id, item.headers, tampered)
    other = dict(item.headers, **{"Wechatpay-Nonce": crypto.new_nonce()})
    assert not crypto.verify_headers(keys.public_key_pem, keys.public_key_id, other, item.body)


async def test_wechats_python_sdk_accepts_and_decrypts_our_notifications(
    stubs: Stubs, merchant: FakeMerchant, keys_dir: Path
) -> None:
    from wechatpayv3 import WeChatPay, WeChatPayType  # the SDK merchants use (dev dependency)

    bundle = merchant_bundle_dir(keys_dir)  # configured from the merchant bundle alone

    def read(name: str) -> str:
        return (bundle / name).read_text()

    sdk = WeChatPay(
        wechatpay_type=WeChatPayType.JSAPI,
        mchid=read("mchid.txt"),
        private_key=read("apiclient_key.pem"),  # the merchant's own: signs requests (none made here)
        cert_serial_no=read("apiclient_serial.txt"),
        appid="wxd678efh567hg6787",
        apiv3_key=read("apiv3_key.txt"),
        public_key=read("platform_public_key.pem"),
        public_key_id=read("public_key_id.txt"),
    )
    await stubs.paid("NT-0003", 888)
    await stubs.refund("NT-0003", "NT-0003-r", 888, 888)
    await merchant.wait_for(lambda items: {i.event_type for i in items} >= {TX, "REFUND.SUCCESS"})
    for item in merchant.received:
        result = sdk.callback(item.headers, item.body)
        assert result is not None, item.event_type
        assert result["event_type"] == item.event_type
        assert result["resource"]["out_trade_no"] == "NT-0003"
    refund = sdk.callback(merchant.of("REFUND.SUCCESS")[0].headers, merchant.of("REFUND.SUCCESS")[0].body)
    assert refund["resource"]["refund_status"] == "SUCCESS"
    amounts = {"total": 888, "refund": 888, "payer_total": 888, "payer_refund": 888}
    assert refund["resource"]["amount"] == amounts
    # The SDK refuses a tampered body, so the acceptance above means something.
    item = merchant.received[0]
    assert sdk.callback(item.headers, item.body.replace(b"encrypt-resource", b"encrypt-resourcE")) is None


async def test_refund_notification_carries_wechats_refund_document(
    stubs: Stubs, merchant: FakeMerchant, keys: PlatformKeys
) -> None:
    paid = await stubs.paid("NT-0004", 500)
    refund = await stubs.refund("NT-0004", "NT-0004-r", 200, 500)
    await merchant.wait_for(lambda _items: bool(merchant.of("REFUND.SUCCESS")))
    item = merchant.of("REFUND.SUCCESS")[0]
    assert item.envelope["resource"]["associated_data"] == "refund"
    assert item.envelope["resource"]["original_type"] == "refund"
    plain = item.plain(keys.apiv3_key)
    assert plain["success_time"].endswith("+08:00")
    del plain["success_time"]
    assert plain == {
        "sp_mchid": SP_MCHID,
        "sub_mchid": SUB_MCHID,
        "out_trade_no": "NT-0004",
        "transaction_id": paid.transaction_id,
        "out_refund_no": "NT-0004-r",
        "refund_id": refund.refund_id,
        "refund_status": "SUCCESS",
        "user_received_account": "支付用户零钱",
        "amount": {"total": 500, "refund": 200, "payer_total": 500, "payer_refund": 200},
    }


async def test_unacknowledged_notification_is_retried_until_success_then_stops(
    wechat: Running, merchant: FakeMerchant
) -> None:
    merchant.policy = fail_first(3, first="FAIL")
    await wechat.stubs.paid("NT-0005")
    received = await merchant.wait_count(4)
    assert [r.answer for r in received] == ["FAIL", "FAIL", "FAIL", "SUCCESS"]
    assert len({r.envelope["id"] for r in received}) == 1
    assert len({r.body for r in received}) == 1

    async def delivered() -> bool:
        (record,) = await records(wechat, "NT-0005")
        return record.status is DeliveryStatus.DELIVERED

    await eventually(delivered)
    await asyncio.sleep(0.4)  # time must pass: two retry gaps (0.2 s) in which nothing more may come
    assert len(merchant.received) == 4
    (record,) = await records(wechat, "NT-0005")
    assert record.status is DeliveryStatus.DELIVERED and record.attempts == 4


async def test_rpc_errors_and_timeouts_count_as_failed_deliveries(
    launch: Launcher, merchant: FakeMerchant
) -> None:
    wechat = await launch(notify_timeout=0.3)
    answers = iter(["ERROR", "SLOW", "SUCCESS"])
    merchant.policy = lambda _item, _index: next(answers)
    await wechat.stubs.paid("NT-0006")
    received = await merchant.wait_count(3)
    assert [r.answer for r in received] == ["ERROR", "SLOW", "SUCCESS"]

    async def delivered() -> bool:
        (record,) = await records(wechat, "NT-0006")
        return record.status is DeliveryStatus.DELIVERED and record.attempts == 3

    await eventually(delivered)


async def test_every_retry_is_freshly_signed(
    launch: Launcher, merchant: FakeMerchant, keys: PlatformKeys
) -> None:
    wechat = await launch(notify_schedule=(1.1, 1.1))
    merchant.policy = fail_first(2)
    await wechat.stubs.paid("NT-0007")
    received = await merchant.wait_count(3)
    nonces = [r.headers["Wechatpay-Nonce"] for r in received]
    stamps = [int(r.headers["Wechatpay-Timestamp"]) for r in received]
    assert len(set(nonces)) == 3
    assert stamps[0] < stamps[1] < stamps[2]  # gaps of 1.1 s: each retry signed at its own second
    assert len({r.headers["Wechatpay-Signature"] for r in received}) == 3
    for item in received:
        assert crypto.verify_headers(keys.public_key_pem, keys.public_key_id, item.headers, item.body)


async def test_notification_is_given_up_after_the_schedule(launch: Launcher, merchant: FakeMerchant) -> None:
    wechat = await launch(notify_schedule=(0.1, 0.1))
    merchant.policy = always("FAIL")
    await wechat.stubs.paid("NT-0008")
    await merchant.wait_count(3)

    async def given_up() -> bool:
        (record,) = await records(wechat, "NT-0008")
        return record.status is DeliveryStatus.GIVEN_UP

    await eventually(given_up)
    (record,) = await records(wechat, "NT-0008")
    assert record.attempts == 3 and "FAIL" in record.last_error
    await asyncio.sleep(0.3)  # time must pass: three retry gaps (0.1 s) in which nothing more may come
    assert len(merchant.received) == 3


async def test_drop_loses_deliveries_which_are_then_retried_on_schedule(
    wechat: Running, merchant: FakeMerchant
) -> None:
    await wechat.stubs.set_faults(rule("notify", "DROP", times=2))
    await wechat.stubs.paid("NT-0009")
    (item,) = await merchant.wait_count(1)
    assert item.answer == "SUCCESS"
    async def delivered_on_third() -> bool:
        (record,) = await records(wechat, "NT-0009")
        return record.status is DeliveryStatus.DELIVERED and record.attempts == 3

    await eventually(delivered_on_third)
    stats = await wechat.stubs.faults.GetFaultStats(faults_pb2.GetFaultStatsRequest(), timeout=5)
    assert stats.total == 2


async def test_duplicate_delivers_the_same_signed_request_twice(
    wechat: Running, merchant: FakeMerchant
) -> None:
    await wechat.stubs.set_faults(rule("notify", "DUPLICATE", times=1))
    await wechat.stubs.paid("NT-0010")
    first, second = await merchant.wait_count(2)
    assert first.body == second.body
    assert first.headers == second.headers

    async def delivered_once() -> bool:
        (record,) = await records(wechat, "NT-0010")
        return record.status is DeliveryStatus.DELIVERED and record.attempts == 1

    await eventually(delivered_once)
    await asyncio.sleep(0.4)  # time must pass: two retry gaps (0.2 s) in which no third copy may come
    assert len(merchant.received) == 2


async def test_delay_delivers_late_so_notifications_arrive_out_of_order(
    wechat: Running, merchant: FakeMerchant, keys: PlatformKeys
) -> None:
    await wechat.stubs.set_faults(rule("notify", "DELAY", delay_ms=1500, times=1))
    await wechat.stubs.paid("NT-0011")
    await wechat.stubs.paid("NT-0012")
    received = await merchant.wait_count(2)
    order = [r.plain(keys.apiv3_key)["out_trade_no"] for r in received]
    assert order == ["NT-0012", "NT-0011"]
    late = received[1]
    assert crypto.verify_headers(keys.public_key_pem, keys.public_key_id, late.headers, late.body)


async def test_signature_probe_is_sent_and_a_verifying_merchant_refuses_it(
    launch: Launcher, merchant: FakeMerchant, keys: PlatformKeys
) -> None:
    def verifying(item: Received, _index: int) -> str:
        ok = crypto.verify_headers(keys.public_key_pem, keys.public_key_id, item.headers, item.body)
        return "SUCCESS" if ok else "FAIL"

    merchant.policy = verifying
    wechat = await launch(sign_probe_rate=1.0)
    await wechat.stubs.paid("NT-0013")
    probe, real = await merchant.wait_count(2)
    assert probe.headers["Wechatpay-Signature"].startswith("WECHATPAY/SIGNTEST/")
    assert probe.body == real.body
    assert (probe.answer, real.answer) == ("FAIL", "SUCCESS")
