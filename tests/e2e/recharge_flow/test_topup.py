"""Against the three running services, for a direct-mode and a partner-mode merchant: a top-up
ends CREDITED with the balance up by pay + the merchant's own bonus, paid to the merchant's WeChat
account, every step on the timeline, and its follow-ups arrive once each."""

from __future__ import annotations

import pytest

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from scripts.merchants import PROVIDER_MCHID, DemoMerchant
from tests.e2e.merchants import BOTH, DIRECT, PARTNER
from tests.e2e.recharge_flow.conftest import POLL, CallbackReceiver, Clients
from tests.waiting import eventually

CREDITED = recharge_pb2.ORDER_STATUS_CREDITED


@pytest.mark.parametrize(
    ("merchant", "pay", "bonus"),
    [
        (DIRECT, 100_000, 20_000),  # the tea house: pay >= ¥1000 get ¥200
        (DIRECT, 19_999, 0),  # under its lowest tier
        (PARTNER, 100_000, 3_000),  # the bakery: pay >= ¥300 get ¥30
        (PARTNER, 20_000, 500),  # pay >= ¥100 get ¥5
    ],
    ids=["direct-1000", "direct-199.99", "partner-1000", "partner-200"],
)
async def test_a_top_up_is_credited_and_the_balance_rises_by_pay_plus_the_merchants_bonus(
    clients: Clients, merchant: DemoMerchant, pay: int, bonus: int
) -> None:
    card_no = await clients.new_card()
    before = await clients.balance(card_no)
    order = await clients.create(card_no, pay)
    assert order.status == recharge_pb2.ORDER_STATUS_AWAITING_PAYMENT
    assert (order.merchant_id, order.merchant_version) == (merchant.merchant_id, 1)
    assert (order.pay_amount_fen, order.bonus_fen, order.credit_amount_fen) == (pay, bonus, pay + bonus)
    assert order.prepay_id

    paid = await clients.pay(order.order_no)
    # WeChat took the money for this merchant's account: its own mchid, or the provider's with it
    # as the sub-merchant.
    if merchant.direct:
        assert (paid.mchid, paid.sp_mchid, paid.sub_mchid) == (merchant.mchid, "", "")
        assert paid.appid == merchant.appid
    else:
        assert (paid.mchid, paid.sp_mchid, paid.sub_mchid) == ("", PROVIDER_MCHID, merchant.mchid)
    credited = await clients.wait_for(order.order_no, lambda o: o.status == CREDITED)
    assert credited.transaction_id == paid.transaction_id
    assert await clients.balance(card_no) == before + pay + bonus
    assert await clients.principal_credits(card_no, order.order_no) == 1
    record = await clients.recharge(order.order_no)
    assert record.status == card_pb2.PRE_RECHARGE_STATUS_SUCCEEDED
    assert (record.merchant_id, record.bonus_fen) == (merchant.merchant_id, bonus)
    notes = [e for e in await clients.timeline(order.order_no) if e.kind == "notification"]
    assert [e.outcome for e in notes][:1] == ["accepted"]  # signed with this merchant's WeChat keys

    events = await clients.timeline(order.order_no)
    assert [(e.from_status, e.to_status) for e in events if e.kind == "transition"] == [
        (0, recharge_pb2.ORDER_STATUS_CREATED),
        (recharge_pb2.ORDER_STATUS_CREATED, recharge_pb2.ORDER_STATUS_AWAITING_PAYMENT),
        (recharge_pb2.ORDER_STATUS_AWAITING_PAYMENT, recharge_pb2.ORDER_STATUS_PAID),
        (recharge_pb2.ORDER_STATUS_PAID, CREDITED),
    ]
    remote = [(e.method.rsplit("/", 1)[-1], e.outcome) for e in events if e.kind == "remote_call"]
    # Each call that changes something is on record before it is sent: both of CreateRechargeOrder's
    # calls are announced with the order, the confirm with the payment; answers ride in the commit
    # that records what they mean (four write transactions for the whole top-up).
    assert remote == [
        ("PreRecharge", "sent"),
        ("CreatePrepay", "sent"),
        ("PreRecharge", "done"),
        ("CreatePrepay", "done"),
        ("ConfirmRecharge", "sent"),
        ("ConfirmRecharge", "done"),
    ]
    assert all(e.latency_ms >= 0 and e.at.seconds > 0 for e in events)


async def test_the_customer_notice_and_the_business_callback_each_arrive_once(
    clients: Clients, receiver: tuple[CallbackReceiver, str]
) -> None:
    pos, _address = receiver
    await clients.followups_settled()
    # WeChat records the first notice but its answer is lost: the recharge center sends it again.
    await clients.wechat_fault(
        "/wechatpay.v1.MessageSimulator/SendTemplateMessage", faults_pb2.FAULT_KIND_LOST_RESPONSE, 1
    )
    card_no = await clients.new_card()
    order = await clients.create(card_no, 50_000, openid=f"o-once-{card_no}")
    pos.fail_once.add(f"{order.order_no}.credited.callback")  # the POS gateway refuses the first callback
    await clients.pay(order.order_no)
    await clients.wait_for(order.order_no, lambda o: o.status == CREDITED)

    callback_id = f"{order.order_no}.credited.callback"
    notice_id = f"{order.order_no}.credited.notice"

    async def delivered() -> list[recharge_pb2.TimelineEvent]:
        events = [e for e in await clients.timeline(order.order_no) if e.kind == "outbox_delivery"]
        return events if sum(e.outcome == "done" for e in events) == 2 else []

    deliveries = await eventually(
        delivered, within=30, interval=POLL, what="the callback and the notice each delivered"
    )
    assert pos.calls.count(callback_id) == 2  # refused once, then accepted
    assert list(pos.seen).count(callback_id) == 1
    assert pos.seen[callback_id].status == CREDITED
    assert pos.seen[callback_id].credit_amount_fen == 58_000

    sent = await clients.messages.ListSentMessages(
        wechatpay_pb2.ListSentMessagesRequest(openid=f"o-once-{card_no}"), timeout=5
    )
    assert [m.idempotency_key for m in sent.messages] == [notice_id]
    assert sent.messages[0].send_count == 2  # sent twice, seen once
    assert sent.messages[0].data["credit_amount"] == "¥580.00"
    assert sorted((e.method, e.outcome) for e in deliveries) == [
        ("business_callback", "done"),
        ("business_callback", "unknown"),
        ("customer_notice", "done"),
        ("customer_notice", "unknown"),
    ]


@BOTH
async def test_a_frozen_card_is_refunded_only_after_the_void_and_the_balance_is_unchanged(
    clients: Clients, merchant: DemoMerchant
) -> None:
    card_no = await clients.new_card()
    order = await clients.create(card_no, 20_000)
    await clients.admin.FreezeCard(card_pb2.FreezeCardRequest(card_no=card_no), timeout=5)
    await clients.pay(order.order_no)
    refunded = await clients.wait_for(
        order.order_no, lambda o: o.status == recharge_pb2.ORDER_STATUS_REFUNDED
    )
    assert refunded.out_refund_no == f"{order.order_no}-R1"
    record = await clients.recharge(order.order_no)
    assert record.status == card_pb2.PRE_RECHARGE_STATUS_VOIDED
    assert await clients.balance(card_no) == 0
    refund = await clients.refund(refunded.out_refund_no)  # refunded from this merchant's account
    assert refund.status == wechatpay_pb2.REFUND_STATUS_SUCCESS and refund.refund_fen == 20_000
    assert refund.merchant == merchant.wechat_ref()
    # REFUNDED came from WeChat's refund notification, signed for this merchant and accepted
    notes = [e for e in await clients.timeline(order.order_no) if e.kind == "notification"]
    assert [(e.outcome, e.detail.split()[0]) for e in notes] == [
        ("accepted", "TRANSACTION.SUCCESS"),
        ("accepted", "REFUND.SUCCESS"),
    ], [(e.outcome, e.detail) for e in notes]
    calls = [
        e.method.rsplit("/", 1)[-1] for e in await clients.timeline(order.order_no) if e.kind == "remote_call"
    ]
    assert calls.index("VoidRecharge") < calls.index("CreateRefund")


@BOTH
async def test_every_answer_and_callback_about_an_order_names_its_merchant_and_configuration_version(
    clients: Clients, merchant: DemoMerchant, receiver: tuple[CallbackReceiver, str]
) -> None:
    pos, _address = receiver
    card_no = await clients.new_card()
    created = await clients.create(card_no, 20_000)
    got = await clients.order(created.order_no)
    listed = await clients.center.ListRechargeOrders(
        recharge_pb2.ListRechargeOrdersRequest(
            merchant_id=merchant.merchant_id, filter=recharge_pb2.OrderFilter(card_no=card_no)
        ),
        timeout=5,
    )
    await clients.pay(created.order_no)
    await clients.wait_for(created.order_no, lambda o: o.status == CREDITED)
    callback_id = f"{created.order_no}.credited.callback"
    await eventually(lambda: callback_id in pos.seen, within=30, interval=POLL, what="the POS callback")
    for order in (created, got, *listed.orders, pos.seen[callback_id]):
        assert (order.merchant_id, order.merchant_version) == (merchant.merchant_id, 1)
