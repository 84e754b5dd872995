"""PaymentNotifications: only genuine, fresh, matching notifications change anything; PAID is
durable before SUCCESS; duplicates and reordered notifications change nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from rc_common import wechatpay_crypto as crypto
from rc_common.db import Database
from recharge_service.adapters.orm import outbox, payments
from recharge_service.adapters.wechat_notifications import NotificationOpener
from recharge_service.domain.merchant import WechatAccount, WechatMode
from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.notifications import handle_notification
from recharge_service.service_layer.orders import load_order
from tests.integration.recharge_service.conftest import Wechat, new_order, reload
from tests.integration.recharge_service.fakes import SUB_MCHID, FakeCard, MemoryMerchants, merchant
from wechat_mock.adapters.keys import PlatformKeys, ensure_direct_keys, merchant_bundle_dir

#: A second partner-mode merchant, and a direct-mode one with its own mchid and keys.
SHOP_B, SUB_MCHID_B = "shop-b", "1900000202"
SHOP_D, DIRECT_MCHID = "shop-d", "1230000109"


async def snapshot(db: Database, order_no: str) -> tuple[Any, ...]:
    """Everything a notification could change."""
    async with db.session(readonly=True) as session:
        paid = (await session.execute(select(func.count()).select_from(payments))).scalar_one()
        queued = (await session.execute(select(func.count()).select_from(outbox))).scalar_one()
    order = await load_order_direct(db, order_no)
    return (order.status, order.version, order.transaction_id, paid, queued)


async def load_order_direct(db: Database, order_no: str) -> RechargeOrder:
    from recharge_service.adapters.unit_of_work import SqlUnitOfWork as UnitOfWork

    async with UnitOfWork(db, readonly=True) as uow:
        order = await uow.orders.get(order_no)
    assert order is not None
    return order


def forged(headers: dict[str, str]) -> dict[str, str]:
    raw = bytearray(base64.b64decode(headers[crypto.HEADER_SIGNATURE]))
    raw[10] ^= 0xFF
    return {**headers, crypto.HEADER_SIGNATURE: base64.b64encode(bytes(raw)).decode()}


def tampered(body: bytes) -> bytes:
    document = json.loads(body)
    document["summary"] = "tampered"
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


BAD_NOTIFICATIONS = {
    "forged signature": lambda w, o: (lambda h, b: (forged(h), b))(*w.paid(o)),
    "tampered body": lambda w, o: (lambda h, b: (h, tampered(b)))(*w.paid(o)),
    "stale timestamp": lambda w, o: (lambda b: (w.headers(b, timestamp=int(time.time()) - 301), b))(
        w.paid(o)[1]
    ),
    "future timestamp": lambda w, o: (lambda b: (w.headers(b, timestamp=int(time.time()) + 301), b))(
        w.paid(o)[1]
    ),
    "SIGNTEST probe": lambda w, o: (
        lambda h, b: ({**h, crypto.HEADER_SIGNATURE: "WECHATPAY/SIGNTEST/abc"}, b)
    )(*w.paid(o)),
    "wrong serial": lambda w, o: (lambda h, b: ({**h, crypto.HEADER_SERIAL: "PUB_KEY_ID_OTHER"}, b))(
        *w.paid(o)
    ),
    "wrong signature type": lambda w, o: (
        lambda h, b: ({**h, crypto.HEADER_SIGNATURE_TYPE: "WECHATPAY2-SM2"}, b)
    )(*w.paid(o)),
    "wrong mchid": lambda w, o: w.paid(o, mchid="1900000999"),
    "wrong amount": lambda w, o: w.paid(o, amount={"total": o.pay_amount_fen - 1}),
    "unknown order": lambda w, o: w.paid(o, out_trade_no="R202611261200009999999999"),
    "not paid": lambda w, o: w.paid(o, trade_state="NOTPAY"),
    "no transaction id": lambda w, o: w.paid(o, transaction_id=""),
}


@pytest.mark.parametrize("case", sorted(BAD_NOTIFICATIONS))
async def test_a_bad_notification_gets_fail_and_changes_nothing(
    deps: Deps, db: Database, opener: NotificationOpener, wechat: Wechat, card: FakeCard, case: str
) -> None:
    order = await new_order(deps)
    before = await snapshot(db, order.order_no)
    headers, body = BAD_NOTIFICATIONS[case](wechat, order)
    ack = await handle_notification(deps, opener, headers, body)
    assert ack.code == "FAIL"
    assert ack.message
    assert await snapshot(db, order.order_no) == before
    assert "ConfirmRecharge" not in card.methods()
    if case != "unknown order":  # the refusal is on the order's timeline
        async with deps.uow(readonly=True) as uow:
            notes = [e for e in await uow.timeline.for_order(order.order_no) if e.kind == "notification"]
        assert [(e.outcome, e.detail) for e in notes] == [("refused", ack.message)]


async def test_a_notification_under_another_apiv3_key_is_refused(
    deps: Deps, db: Database, opener: NotificationOpener, wechat: Wechat
) -> None:
    order = await new_order(deps)
    before = await snapshot(db, order.order_no)
    resource = crypto.encrypt_resource("B" * 32, json.dumps({"out_trade_no": order.order_no}), "transaction")
    body = crypto.build_notification_body(
        notification_id="n1",
        create_time="2026-11-26T12:00:00+08:00",
        event_type="TRANSACTION.SUCCESS",
        summary="x",
        resource=resource,
    )
    ack = await handle_notification(deps, opener, wechat.headers(body), body)
    assert ack.code == "FAIL" and "decrypt" in ack.message
    assert await snapshot(db, order.order_no) == before


async def test_success_is_answered_only_after_paid_and_the_payment_are_durable(
    deps: Deps, db: Database, opener: NotificationOpener, wechat: Wechat, card: FakeCard
) -> None:
    order = await new_order(deps)
    card.confirm_gate = asyncio.Event()  # the credit step waits: the answer must not
    ack = await handle_notification(deps, opener, *wechat.paid(order))
    assert ack.code == "SUCCESS"
    fresh = Database(str(db.url))  # another connection pool sees what was committed
    try:
        stored = await load_order_direct(fresh, order.order_no)
        async with fresh.session(readonly=True) as session:
            recorded = (await session.execute(select(payments))).mappings().all()
    finally:
        await fresh.dispose()
    assert stored.status is OrderStatus.PAID
    assert stored.transaction_id == f"4200{order.order_no[-10:]}"
    assert stored.paid_at is not None
    assert [(r["transaction_id"], r["amount_total_fen"]) for r in recorded] == [
        (stored.transaction_id, 100_000)
    ]
    card.confirm_gate.set()
    await deps.background.join()
    assert (await reload(deps, order.order_no)).status is OrderStatus.CREDITED


async def test_a_database_failure_answers_fail_so_wechat_retries(
    deps: Deps, db: Database, opener: NotificationOpener, wechat: Wechat, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = await new_order(deps)
    before = await snapshot(db, order.order_no)

    def broken(_conn: object, *_args: object, **_kwargs: object) -> int:
        raise OperationalError("INSERT INTO payments", {}, Exception("disk I/O error"))

    # The payment's insert fails inside the write transaction: the whole unit rolls back.
    monkeypatch.setattr("recharge_service.adapters.repository.insert_or_ignore", broken)
    ack = await handle_notification(deps, opener, *wechat.paid(order))
    assert ack.code == "FAIL"
    monkeypatch.undo()
    assert await snapshot(db, order.order_no) == before
    again = await handle_notification(deps, opener, *wechat.paid(order))
    assert again.code == "SUCCESS"


async def test_duplicate_notifications_credit_once_and_change_nothing_more(
    deps: Deps, db: Database, opener: NotificationOpener, wechat: Wechat, card: FakeCard
) -> None:
    order = await new_order(deps)
    assert (await handle_notification(deps, opener, *wechat.paid(order))).code == "SUCCESS"
    await deps.background.join()
    after_first = await snapshot(db, order.order_no)
    assert after_first[0] is OrderStatus.CREDITED
    for _ in range(3):
        assert (await handle_notification(deps, opener, *wechat.paid(order))).code == "SUCCESS"
    await deps.background.join()
    assert await snapshot(db, order.order_no) == after_first
    assert card.methods().count("ConfirmRecharge") == 1


async def test_concurrent_duplicates_record_one_payment_and_one_paid_transition(
    deps: Deps, db: Database, opener: NotificationOpener, wechat: Wechat, card: FakeCard
) -> None:
    order = await new_order(deps)
    card.confirm_gate = asyncio.Event()
    acks = await asyncio.gather(*(handle_notification(deps, opener, *wechat.paid(order)) for _ in range(5)))
    assert {ack.code for ack in acks} == {"SUCCESS"}
    card.confirm_gate.set()
    await deps.background.join()
    status, _version, _tx, paid, _queued = await snapshot(db, order.order_no)
    assert status is OrderStatus.CREDITED and paid == 1
    assert card.methods().count("ConfirmRecharge") == 1


async def test_a_refund_notification_before_any_refund_is_refused_and_changes_nothing(
    deps: Deps, db: Database, opener: NotificationOpener, wechat: Wechat
) -> None:
    order = await new_order(deps)
    await handle_notification(deps, opener, *wechat.paid(order))
    await deps.background.join()
    credited = await load_order(deps, order.order_no)
    before = await snapshot(db, order.order_no)
    credited.out_refund_no = f"{order.order_no}-R1"
    ack = await handle_notification(deps, opener, *wechat.refund(credited, "SUCCESS"))
    assert ack.code == "FAIL"
    assert await snapshot(db, order.order_no) == before


async def test_a_late_payment_notification_after_the_credit_changes_nothing(
    deps: Deps, db: Database, opener: NotificationOpener, wechat: Wechat
) -> None:
    order = await new_order(deps)
    headers, body = wechat.paid(order)
    await handle_notification(deps, opener, *wechat.paid(order))
    await deps.background.join()
    before = await snapshot(db, order.order_no)
    assert (await handle_notification(deps, opener, headers, body)).code == "SUCCESS"  # the older copy
    await deps.background.join()
    assert await snapshot(db, order.order_no) == before


async def refused_and_unchanged(
    deps: Deps,
    db: Database,
    opener: NotificationOpener,
    order: RechargeOrder,
    notification: tuple[dict[str, str], bytes],
) -> str:
    """Hand ``notification`` over: it must get FAIL, change nothing and be noted refused on the
    order's timeline. The refusal's message."""
    before = await snapshot(db, order.order_no)
    ack = await handle_notification(deps, opener, *notification)
    assert ack.code == "FAIL" and ack.message
    await deps.background.join()
    assert await snapshot(db, order.order_no) == before
    async with deps.uow(readonly=True) as uow:
        notes = [e for e in await uow.timeline.for_order(order.order_no) if e.kind == "notification"]
    assert [(e.outcome, e.detail) for e in notes] == [("refused", ack.message)]
    return ack.message


async def test_a_notification_for_one_merchant_carrying_anothers_order_is_refused(
    deps: Deps,
    db: Database,
    opener: NotificationOpener,
    wechat: Wechat,
    merchants: MemoryMerchants,
    card: FakeCard,
) -> None:
    merchants.add(
        merchant(SHOP_B, wechat=WechatAccount(WechatMode.PARTNER, SUB_MCHID_B, "wx4444444444444444"))
    )
    theirs = await new_order(deps, merchant_id=SHOP_B)
    # shop-a's sub_mchid (the builder's default) naming shop-b's order.
    message = await refused_and_unchanged(deps, db, opener, theirs, wechat.paid(theirs))
    assert SHOP_B in message
    assert "ConfirmRecharge" not in card.methods()
    # The same payment under shop-b's own sub_mchid is accepted.
    ack = await handle_notification(deps, opener, *wechat.paid(theirs, sub_mchid=SUB_MCHID_B))
    assert ack.code == "SUCCESS"
    await deps.background.join()
    assert (await reload(deps, theirs.order_no)).status is OrderStatus.CREDITED


@pytest.mark.parametrize(
    "case",
    ["wrong sp_mchid", "mchid instead of sp_mchid and sub_mchid", "sub_mchid without sp_mchid"],
)
async def test_a_partner_notification_must_name_the_providers_sp_mchid_and_the_sub_mchid(
    deps: Deps, db: Database, opener: NotificationOpener, wechat: Wechat, card: FakeCard, case: str
) -> None:
    order = await new_order(deps)
    notification = {
        "wrong sp_mchid": lambda: wechat.paid(order, sp_mchid="1900000999"),
        "mchid instead of sp_mchid and sub_mchid": lambda: wechat.paid_direct(order, SUB_MCHID),
        "sub_mchid without sp_mchid": lambda: wechat.paid(order, sp_mchid=""),
    }[case]()
    await refused_and_unchanged(deps, db, opener, order, notification)
    assert "ConfirmRecharge" not in card.methods()


@pytest.fixture
def direct_keys(tmp_path: Path) -> tuple[Path, PlatformKeys]:
    """A direct-mode merchant's own key set (not the provider's): its merchant bundle (what its
    configuration names), and WeChat's keys that sign for it."""
    keys = ensure_direct_keys(tmp_path, [DIRECT_MCHID])[DIRECT_MCHID]
    return merchant_bundle_dir(tmp_path, DIRECT_MCHID), keys


@pytest.fixture
def direct_merchant(merchants: MemoryMerchants, direct_keys: tuple[Path, PlatformKeys]) -> str:
    account = WechatAccount(WechatMode.DIRECT, DIRECT_MCHID, "wx2222222222222222", str(direct_keys[0]))
    merchants.add(merchant(SHOP_D, wechat=account))
    return SHOP_D


async def test_a_direct_merchants_notification_signed_with_the_providers_keys_is_refused(
    deps: Deps, db: Database, opener: NotificationOpener, wechat: Wechat, card: FakeCard, direct_merchant: str
) -> None:
    order = await new_order(deps, merchant_id=direct_merchant)
    message = await refused_and_unchanged(deps, db, opener, order, wechat.paid_direct(order, DIRECT_MCHID))
    assert "keys" in message
    assert "ConfirmRecharge" not in card.methods()


async def test_a_direct_merchants_notification_signed_with_its_own_keys_is_accepted(
    deps: Deps, db: Database, opener: NotificationOpener, direct_keys: tuple[Path, PlatformKeys],
    direct_merchant: str
) -> None:
    order = await new_order(deps, merchant_id=direct_merchant)
    own = Wechat(direct_keys[1])
    ack = await handle_notification(deps, opener, *own.paid_direct(order, DIRECT_MCHID))
    assert ack.code == "SUCCESS"
    await deps.background.join()
    credited = await reload(deps, order.order_no)
    assert credited.status is OrderStatus.CREDITED
    assert credited.transaction_id == f"4200{order.order_no[-10:]}"


async def test_a_direct_merchants_keys_do_not_vouch_for_a_partner_merchants_payment(
    deps: Deps, db: Database, opener: NotificationOpener, direct_keys: tuple[Path, PlatformKeys],
    direct_merchant: str
) -> None:
    order = await new_order(deps)  # shop-a, partner mode: only the provider's keys may sign for it
    borrowed = Wechat(direct_keys[1])
    message = await refused_and_unchanged(deps, db, opener, order, borrowed.paid(order))
    assert "keys" in message
