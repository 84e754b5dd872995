"""Against the running services, for a direct-mode and a partner-mode merchant: duplicate,
replayed and reordered notifications change nothing; forged ones are refused, and so is a genuine
notification about one merchant's order that names another merchant or is signed with another
merchant's keys."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from rc_common import wechatpay_crypto as crypto
from scripts.merchants import PROVIDER_APPID, PROVIDER_MCHID, DemoMerchant
from tests.e2e.merchants import BOTH, DIRECT, PARTNER
from tests.e2e.recharge_flow.conftest import Clients
from wechat_mock.adapters.keys import PlatformKeys

CREDITED = recharge_pb2.ORDER_STATUS_CREDITED
AWAITING_PAYMENT = recharge_pb2.ORDER_STATUS_AWAITING_PAYMENT
#: Why the recharge center refuses a notification that is not from the order's merchant.
IDS_DIFFER, KEYS_DIFFER = "is not order's merchant", "signed with keys that are not"


def keys_of(clients: Clients, merchant: DemoMerchant | None = None) -> PlatformKeys:
    """The keys WeChat signs ``merchant``'s notifications with (the clients' merchant by default):
    its own in direct mode, the provider's in partner mode (the simulator made them at start)."""
    return (merchant or clients.merchant).wechat_signing_keys(clients.stack.keys_dir)


def merchant_ids(merchant: DemoMerchant) -> dict[str, str]:
    """How WeChat names the merchant in a notification: ``mchid`` in direct mode, ``sp_mchid``
    and ``sub_mchid`` in partner mode."""
    if merchant.direct:
        return {"mchid": merchant.mchid}
    return {"sp_mchid": PROVIDER_MCHID, "sub_mchid": merchant.mchid}


def merchant_fields(merchant: DemoMerchant, openid: str) -> dict[str, Any]:
    """… and in a transaction, with the app id and the payer's openid under that app."""
    if merchant.direct:
        return {**merchant_ids(merchant), "appid": merchant.appid, "payer": {"openid": openid}}
    return {**merchant_ids(merchant), "sp_appid": PROVIDER_APPID, "payer": {"sp_openid": openid}}


def payment_notification(
    keys: PlatformKeys,
    merchant: DemoMerchant,
    order: recharge_pb2.RechargeOrder,
    transaction_id: str,
    *,
    private_key_pem: bytes = b"",
    timestamp: int | None = None,
) -> wechatpay_pb2.NotifyRequest:
    """TRANSACTION.SUCCESS for ``order`` naming ``merchant``, sealed and signed with ``keys``."""
    resource = {
        **merchant_fields(merchant, order.payer_openid),
        "out_trade_no": order.order_no,
        "transaction_id": transaction_id,
        "trade_state": "SUCCESS",
        "success_time": "2026-11-26T12:00:05+08:00",
        "amount": {"total": order.pay_amount_fen},
    }
    sealed = crypto.encrypt_resource(
        keys.apiv3_key, json.dumps(resource), "transaction", original_type="transaction"
    )
    body = crypto.build_notification_body(
        notification_id=str(uuid.uuid4()),
        create_time="2026-11-26T12:00:05+08:00",
        event_type="TRANSACTION.SUCCESS",
        summary="支付成功",
        resource=sealed,
    )
    headers = crypto.signed_headers(
        private_key_pem or keys.private_key_pem,
        keys.public_key_id,
        body,
        timestamp=int(time.time()) if timestamp is None else timestamp,
    )
    return wechatpay_pb2.NotifyRequest(headers=headers, body=body)


@pytest.mark.parametrize(
    ("merchant", "credit"), [(DIRECT, 22_000), (PARTNER, 20_500)], ids=["direct", "partner"]
)
async def test_duplicated_and_replayed_notifications_credit_once(
    clients: Clients, merchant: DemoMerchant, credit: int
) -> None:
    await clients.wechat_fault("notify", faults_pb2.FAULT_KIND_DUPLICATE, 5)
    card_no = await clients.new_card()
    order = await clients.create(card_no, 20_000)
    paid = await clients.pay(order.order_no)
    credited = await clients.wait_for(order.order_no, lambda o: o.status == CREDITED)

    replay = payment_notification(keys_of(clients), merchant, order, paid.transaction_id)
    for _ in range(3):
        ack = await clients.notify.Notify(replay, timeout=5)
        assert ack.code == "SUCCESS", ack.message
    after = await clients.order(order.order_no)
    assert (after.status, after.version) == (CREDITED, credited.version)
    assert await clients.principal_credits(card_no, order.order_no) == 1
    assert await clients.balance(card_no) == credit
    notes = [e for e in await clients.timeline(order.order_no) if e.kind == "notification"]
    assert [e.outcome for e in notes].count("accepted") == 1
    assert [e.outcome for e in notes].count("duplicate") >= 3


@BOTH
async def test_a_refund_notification_for_a_credited_order_is_refused_and_changes_nothing(
    clients: Clients, merchant: DemoMerchant
) -> None:
    keys = keys_of(clients)
    card_no = await clients.new_card()
    order = await clients.create(card_no, 20_000)
    paid = await clients.pay(order.order_no)
    credited = await clients.wait_for(order.order_no, lambda o: o.status == CREDITED)
    resource = {
        **merchant_ids(merchant),
        "out_trade_no": order.order_no,
        "transaction_id": paid.transaction_id,
        "out_refund_no": f"{order.order_no}-R1",
        "refund_id": "503000",
        "refund_status": "SUCCESS",
        "amount": {"total": 20_000, "refund": 20_000},
    }
    sealed = crypto.encrypt_resource(keys.apiv3_key, json.dumps(resource), "refund", original_type="refund")
    body = crypto.build_notification_body(
        notification_id="refund-out-of-order",
        create_time="2026-11-26T12:00:09+08:00",
        event_type="REFUND.SUCCESS",
        summary="退款成功",
        resource=sealed,
    )
    headers = crypto.signed_headers(
        keys.private_key_pem, keys.public_key_id, body, timestamp=int(time.time())
    )
    ack = await clients.notify.Notify(wechatpay_pb2.NotifyRequest(headers=headers, body=body), timeout=5)
    assert ack.code == "FAIL"
    # refused for what it says, not for whom (it is this merchant's, signed with its keys)
    assert "is not this order's refund" in ack.message, ack.message
    after = await clients.order(order.order_no)
    assert (after.status, after.version) == (CREDITED, credited.version)
    assert await clients.balance(card_no) == after.credit_amount_fen


async def test_forged_stale_and_probe_notifications_are_refused_and_the_order_waits(clients: Clients) -> None:
    keys = keys_of(clients)
    card_no = await clients.new_card()
    order = await clients.create(card_no, 20_000)
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    merchant = clients.merchant
    forged = payment_notification(keys, merchant, order, "4200FORGED", private_key_pem=impostor)
    stale = payment_notification(keys, merchant, order, "4200STALE", timestamp=int(time.time()) - 600)
    probe = payment_notification(keys, merchant, order, "4200PROBE")
    probe.headers[crypto.HEADER_SIGNATURE] = "WECHATPAY/SIGNTEST/" + probe.headers[crypto.HEADER_SIGNATURE]
    for request in (forged, stale, probe):
        ack = await clients.notify.Notify(request, timeout=5)
        assert ack.code == "FAIL", request.headers
    await untouched(clients, order, refusals=3)


async def untouched(clients: Clients, order: recharge_pb2.RechargeOrder, *, refusals: int) -> None:
    """The order still waits for its payment, nothing reached the card, and its timeline shows
    ``refusals`` notifications, every one refused."""
    after = await clients.order(order.order_no)
    assert (after.status, after.version, after.transaction_id) == (AWAITING_PAYMENT, order.version, "")
    record = await clients.recharge(order.order_no)
    assert record.status == card_pb2.PRE_RECHARGE_STATUS_RECHARGING
    assert await clients.balance(order.card_no) == 0
    refused = [e for e in await clients.timeline(order.order_no) if e.kind == "notification"]
    assert [e.outcome for e in refused] == ["refused"] * refusals


MIX_UPS = [
    # the order's merchant, whose keys sign the notification, whom it names, why it is refused
    (DIRECT, DIRECT, PARTNER, IDS_DIFFER),
    (DIRECT, PARTNER, DIRECT, KEYS_DIFFER),  # names the tea house, signed with the provider's keys
    (DIRECT, PARTNER, PARTNER, IDS_DIFFER),  # the bakery's genuine notification, the tea house's order
    (PARTNER, DIRECT, DIRECT, IDS_DIFFER),  # the tea house's genuine notification, the bakery's order
    (PARTNER, DIRECT, PARTNER, KEYS_DIFFER),  # names the bakery, signed with the tea house's keys
    (PARTNER, PARTNER, DIRECT, IDS_DIFFER),
]


@pytest.mark.parametrize(
    ("merchant", "signer", "named", "why"),
    MIX_UPS,
    ids=[f"{m.mode}-order-{s.mode}-keys-names-{n.mode}" for m, s, n, _w in MIX_UPS],
)
async def test_a_notification_signed_or_named_for_another_merchant_is_refused_and_the_order_waits(
    clients: Clients, merchant: DemoMerchant, signer: DemoMerchant, named: DemoMerchant, why: str
) -> None:
    """A notification must come with the WeChat account of the order's merchant, opened by that
    account's keys: one merchant's WeChat messages never pay another merchant's order."""
    card_no = await clients.new_card()
    order = await clients.create(card_no, 20_000)
    mixed_up = payment_notification(keys_of(clients, signer), named, order, "4200MIXEDUP")
    ack = await clients.notify.Notify(mixed_up, timeout=5)
    assert ack.code == "FAIL" and why in ack.message, ack.message
    await untouched(clients, order, refusals=1)
    # … and the real payment is still credited, by the order's own merchant's notification
    paid = await clients.pay(order.order_no)
    credited = await clients.wait_for(order.order_no, lambda o: o.status == CREDITED)
    assert credited.transaction_id == paid.transaction_id != "4200MIXEDUP"
    assert await clients.principal_credits(card_no, order.order_no) == 1
