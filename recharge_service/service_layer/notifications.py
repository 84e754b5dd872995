"""PaymentNotifications.Notify: WeChat's signed payment and refund notifications.

Open (signature, freshness, decryption: the ``NotificationOpener`` port), check (merchant id,
order exists, amount, state), then record in ONE transaction and answer SUCCESS only after the
commit. Any failure answers FAIL and changes nothing, so WeChat retries. The credit step runs
afterwards in a background task: it never delays the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rc_common.logs import get_logger
from rc_common.metrics import count_refused_notification
from recharge_service.domain.answers import RefundState
from recharge_service.domain.merchant import WechatMode
from recharge_service.domain.order import OrderStatus
from recharge_service.domain.timeline import NOTIFICATION, TimelineEntry
from recharge_service.service_layer import confirm, settle
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.holding import (
    RELEASED_AT,
    LeaseLost,
    OrderLease,
    acquire,
    holding,
    release,
)
from recharge_service.service_layer.merchants import wechat_account
from recharge_service.service_layer.orders import flow
from recharge_service.service_layer.payment import PaymentRejected, record_payment_then_confirm
from recharge_service.service_layer.ports import CONFIRM_RECHARGE, PaymentTransaction
from recharge_service.service_layer.steps import credit_task_key
from recharge_service.service_layer.storage import StorageError
from recharge_service.service_layer.timeline_notes import TimelineNotes

log = get_logger("notify")

SUCCESS, FAIL = "SUCCESS", "FAIL"
#: Refusal reasons (metrics): a notification that does not open (signature, timestamp, serial,
#: decryption) — someone forging, or keys out of step — and a refund that contradicts the order.
VERIFICATION_FAILED, REFUND_MISMATCH = "VERIFICATION_FAILED", "REFUND_MISMATCH"
TRANSACTION_SUCCESS = "TRANSACTION.SUCCESS"
REFUND_EVENTS = frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"})


class BadNotification(Exception):
    """Not a genuine, fresh, decryptable notification; ``str(exc)`` says why. ``order_no`` is the
    order its resource names when that much could be read (for the timeline only)."""

    order_no: str = ""


class UnknownSerial(BadNotification):
    """Signed with a platform key we do not hold (yet): perhaps a direct merchant's we have not
    loaded; the handler loads them and tries once more."""


@dataclass(frozen=True)
class OpenedNotification:
    notification_id: str
    event_type: str
    resource: dict[str, Any]
    #: Whose keys opened it: "" = the provider's, else a direct-mode merchant's ``keys_dir``.
    keys_dir: str = ""


class NotificationOpener(Protocol):
    def open(self, headers: Mapping[str, str], body: bytes) -> OpenedNotification: ...

    def use_direct_keys(self, keys_dirs: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class Ack:
    code: str
    message: str = ""


async def handle_notification(
    deps: Deps, opener: NotificationOpener, headers: Mapping[str, str], body: bytes
) -> Ack:
    try:
        notice = await _open(deps, opener, headers, body)
    except BadNotification as exc:
        return await _refuse(deps, {"out_trade_no": exc.order_no}, str(exc), VERIFICATION_FAILED)
    resource = notice.resource
    try:
        mix_up = await _not_the_orders_merchant(deps, notice)
        if mix_up:
            return await _refuse(deps, resource, mix_up, "MERCHANT_MISMATCH")
        if notice.event_type == TRANSACTION_SUCCESS:
            return await _payment(deps, resource)
        if notice.event_type in REFUND_EVENTS:
            return await _refund(deps, notice.event_type, resource)
    except StorageError:
        log.exception("notification_not_recorded", event_type=notice.event_type)
        return Ack(FAIL, "could not record the notification; retry later")
    return await _refuse(deps, resource, f"unsupported event_type {notice.event_type!r}", "UNSUPPORTED_EVENT")


async def _open(
    deps: Deps, opener: NotificationOpener, headers: Mapping[str, str], body: bytes
) -> OpenedNotification:
    try:
        return opener.open(headers, body)
    except UnknownSerial:
        try:
            merchants = await deps.merchants.all()
        except StorageError:
            raise BadNotification("could not read the merchants' keys; retry later") from None
        opener.use_direct_keys([m.wechat.keys_dir for m in merchants if m.wechat.mode is WechatMode.DIRECT])
        return opener.open(headers, body)


async def _not_the_orders_merchant(deps: Deps, notice: OpenedNotification) -> str:
    """Why the notification cannot be about the order it names ("" when it can): it must come
    with the WeChat account of the order's merchant, opened by that account's keys."""
    resource = notice.resource
    order_no = str(resource.get("out_trade_no", ""))
    async with deps.uow(readonly=True) as uow:
        order = await uow.orders.get(order_no)
    if order is None:
        return f"unknown order {order_no!r}"
    account = await wechat_account(deps.merchants, order)
    said = {name: str(resource.get(name, "")) for name in ("mchid", "sp_mchid", "sub_mchid")}
    if account.mode is WechatMode.DIRECT:
        expected = {"mchid": account.mchid, "sp_mchid": "", "sub_mchid": ""}
        keys_dir = account.keys_dir
    else:
        expected = {"mchid": "", "sp_mchid": deps.sp_mchid, "sub_mchid": account.mchid}
        keys_dir = ""
    if said != expected:
        return f"merchant {said} is not order's merchant {order.merchant_id} ({expected})"
    if notice.keys_dir != keys_dir:
        return f"signed with keys that are not merchant {order.merchant_id}'s"
    return ""


async def _payment(deps: Deps, resource: dict[str, Any]) -> Ack:
    amount = resource.get("amount") if isinstance(resource.get("amount"), dict) else {}
    transaction = PaymentTransaction(
        out_trade_no=str(resource.get("out_trade_no", "")),
        transaction_id=str(resource.get("transaction_id", "")),
        trade_state=str(resource.get("trade_state", "")),
        amount_total_fen=_int(amount.get("total") if amount else None),
        success_time=str(resource.get("success_time", "")),
    )
    try:
        order, announced, lease = await record_payment_then_confirm(deps, transaction, source="notification")
    except PaymentRejected as exc:
        return await _refuse(deps, resource, str(exc), "PAYMENT_REJECTED")
    if order.status is OrderStatus.PAID:
        start_credit(deps, order.order_no, announced=announced, lease=lease)
    return Ack(SUCCESS, "")


def start_credit(
    deps: Deps, order_no: str, *, announced: bool = False, lease: OrderLease | None = None
) -> None:
    """Confirm the pre-recharge in the background (one task per order at a time), holding the
    order's lease (``holding.py``: when another replica's sentinel or an operator holds it, the
    holder credits it). ``announced``: the payment's transaction already holds the confirm's
    first ``sent`` row; ``lease``: and the order's lease (else it is claimed here). The write that
    makes the order final releases the lease (``holding.RELEASED_AT``); else it is released after."""

    async def credit() -> None:
        held = lease or await acquire(deps, order_no, f"{deps.node}/credit", deps.lease)
        async with flow(deps, announced=[CONFIRM_RECHARGE] if announced else [], order_no=order_no):
            if held is None:  # a sentinel or an operator works on it: the holder credits it
                log.info("credit_left_to_the_lease_holder", order_no=order_no)
                return
            try:
                async with holding(deps, held):
                    ended = await confirm.credit(deps, order_no)
            except LeaseLost as exc:
                log.warning("credit_lease_lost", order_no=order_no, why=exc.message)
                return
            if ended.status not in RELEASED_AT:  # undecided: the sentinel may take it at once
                await release(deps, held)

    deps.background.spawn(credit_task_key(order_no), credit)


async def _refund(deps: Deps, event_type: str, resource: dict[str, Any]) -> Ack:
    order_no = str(resource.get("out_trade_no", ""))
    out_refund_no = str(resource.get("out_refund_no", ""))
    status = str(resource.get("refund_status", ""))
    amount = resource.get("amount") if isinstance(resource.get("amount"), dict) else {}
    async with deps.uow(readonly=True) as uow:
        order = await uow.orders.get(order_no)
    if order is None:
        return await _refuse(deps, resource, f"unknown order {order_no!r}", "UNKNOWN_ORDER")
    if not order.out_refund_no or out_refund_no != order.out_refund_no:
        return await _refuse(
            deps, resource, f"refund {out_refund_no!r} is not this order's refund", REFUND_MISMATCH
        )
    if _int(amount.get("refund") if amount else None) != order.pay_amount_fen:
        return await _refuse(deps, resource, "refund amount does not match the pay amount", REFUND_MISMATCH)
    expected = event_type.removeprefix("REFUND.")
    if status != expected:
        return await _refuse(
            deps, resource, f"refund_status {status!r} contradicts {event_type}", REFUND_MISMATCH
        )
    detail = f"{event_type} {out_refund_no} (refund {resource.get('refund_id', '')})"
    await _note(deps, order_no, "accepted", detail)
    if status == RefundState.SUCCESS:
        await settle.mark_refunded(deps, order_no, detail)
    elif order.status is OrderStatus.REFUNDING:
        await settle.send_to_manual_review(deps, order_no, f"refund {out_refund_no} ended {status}")
    return Ack(SUCCESS, "")


async def _refuse(deps: Deps, resource: dict[str, Any], why: str, reason: str) -> Ack:
    """Answer FAIL; ``reason`` (a short constant) labels ``rc_notifications_refused_total``."""
    order_no = str(resource.get("out_trade_no", ""))
    log.warning("notification_refused", order_no=order_no, why=why, reason=reason)
    count_refused_notification(reason)
    if order_no:
        try:
            async with deps.uow(readonly=True) as uow:
                known = await uow.orders.get(order_no) is not None
        except StorageError:
            log.exception("notification_order_lookup_failed", order_no=order_no)
            known = False
        if known:
            await _note(deps, order_no, "refused", why)
    return Ack(FAIL, why)


async def _note(deps: Deps, order_no: str, outcome: str, detail: str) -> None:
    entry = TimelineEntry(
        order_no, deps.clock(), NOTIFICATION, method="notify", outcome=outcome, actor="wechat", detail=detail
    )
    await TimelineNotes(deps.uow).record(entry)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
