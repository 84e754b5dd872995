"""Against the running services: duplicate, replayed and reordered notifications change nothing;
forged ones are refused."""

from __future__ import annotations

import json
import time
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from rc_common import wechatpay_crypto as crypto
from tests.e2e.recharge_flow.conftest import Clients
from wechat_mock.adapters.keys import PlatformKeys, ensure_keys

CREDITED = recharge_pb2.ORDER_STATUS_CREDITED


def keys_of(clients: Clients) -> PlatformKeys:
    return ensure_keys(clients.stack.workdir / "wechat-keys")  # loads the simulator's existing keys


def payment_notification(
    keys: PlatformKeys,
    order: recharge_pb2.RechargeOrder,
    transaction_id: str,
    *,
    private_key_pem: bytes = b"",
    timestamp: int | None = None,
) -> wechatpay_pb2.NotifyRequest:
    resource = {
        "mchid": "1900000109",
        "appid": "wxd678efh567hg6787",
        "out_trade_no": order.order_no,
        "transaction_id": transaction_id,
        "trade_state": "SUCCESS",
        "success_time": "2026-11-26T12:00:05+08:00",
        "payer": {"openid": order.payer_openid},
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


async def test_duplicated_and_replayed_notifications_credit_once(clients: Clients) -> None:
    await clients.wechat_fault("notify", faults_pb2.FAULT_KIND_DUPLICATE, 5)
    card_no = await clients.new_card()
    order = await clients.create(card_no, 20_000)
    paid = await clients.payer.Pay(wechatpay_pb2.PayRequest(out_trade_no=order.order_no), timeout=10)
    credited = await clients.wait_for(order.order_no, lambda o: o.status == CREDITED)

    replay = payment_notification(keys_of(clients), order, paid.transaction_id)
    for _ in range(3):
        ack = await clients.notify.Notify(replay, timeout=5)
        assert ack.code == "SUCCESS"
    after = await clients.order(order.order_no)
    assert (after.status, after.version) == (CREDITED, credited.version)
    assert await clients.principal_credits(card_no, order.order_no) == 1
    assert await clients.balance(card_no) == 22_000
    notes = [e for e in await clients.timeline(order.order_no) if e.kind == "notification"]
    assert [e.outcome for e in notes].count("accepted") == 1
    assert [e.outcome for e in notes].count("duplicate") >= 3


async def test_a_refund_notification_for_a_credited_order_is_refused_and_changes_nothing(
    clients: Clients,
) -> None:
    keys = keys_of(clients)
    card_no = await clients.new_card()
    order = await clients.create(card_no, 20_000)
    paid = await clients.payer.Pay(wechatpay_pb2.PayRequest(out_trade_no=order.order_no), timeout=10)
    credited = await clients.wait_for(order.order_no, lambda o: o.status == CREDITED)
    resource = {
        "mchid": "1900000109",
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
    after = await clients.order(order.order_no)
    assert (after.status, after.version) == (CREDITED, credited.version)


async def test_forged_stale_and_probe_notifications_are_refused_and_the_order_waits(clients: Clients) -> None:
    keys = keys_of(clients)
    card_no = await clients.new_card()
    order = await clients.create(card_no, 20_000)
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forged = payment_notification(keys, order, "4200FORGED", private_key_pem=impostor)
    stale = payment_notification(keys, order, "4200STALE", timestamp=int(time.time()) - 600)
    probe = payment_notification(keys, order, "4200PROBE")
    probe.headers[crypto.HEADER_SIGNATURE] = "WECHATPAY/SIGNTEST/" + probe.headers[crypto.HEADER_SIGNATURE]
    for request in (forged, stale, probe):
        ack = await clients.notify.Notify(request, timeout=5)
        assert ack.code == "FAIL", request.headers
    after = await clients.order(order.order_no)
    assert (after.status, after.version, after.transaction_id) == (
        recharge_pb2.ORDER_STATUS_AWAITING_PAYMENT,
        order.version,
        "",
    )
    record = await clients.cards.GetRecharge(card_pb2.GetRechargeRequest(order_no=order.order_no), timeout=5)
    assert record.status == card_pb2.PRE_RECHARGE_STATUS_RECHARGING
    refused = [e for e in await clients.timeline(order.order_no) if e.kind == "notification"]
    assert [e.outcome for e in refused] == ["refused"] * 3
