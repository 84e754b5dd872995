"""CreateRechargeOrder: persist, pre-recharge, prepay — resumable with the same idempotency key.

1. Validate (nothing is written on bad input), including the merchant: it must exist, be enabled
   and sell through the channel; the order keeps the merchant's current configuration version
   (its payment window, WeChat account, callback targets). Find the order by the merchant's
   idempotency key, or — within the merchant's limits on open orders and on the rate of new
   orders, and the caps on unpaid orders per card and per payer (``limits.py``;
   RESOURCE_EXHAUSTED, nothing written) — insert it
   CREATED — in the same transaction as the ``sent`` rows of the two calls that follow — and commit.
   The same key with other parameters is refused (IDEMPOTENCY_KEY_REUSED).
2. CREATED without a recorded pre-recharge: ``CardSystem.PreRecharge`` naming the merchant (retried
   on unknown; another merchant's card is refused as not found).
   Refused -> REJECTED, the card system's reason goes back to the caller. Unknown -> UNAVAILABLE
   with the order number: the caller retries with the same key and we resume here.
3. CREATED with the pre-recharge answered: ``PaymentGateway.CreatePrepay`` for the merchant's WeChat
   account with out_trade_no = order number and time_expire = created + the merchant's payment
   window -> AWAITING_PAYMENT, recorded in one
   transaction with the pre-recharge's answer (whatever the prepay's answer, the pre-recharge is
   recorded with it). A crash before that transaction loses nothing: the retry asks the card
   system again with the same order number and gets the same record back.

Every outgoing call takes at most what its caller still waits (``adapters/retrying.py``); a
request whose caller already gave up writes nothing. An order its request leaves CREATED (caller
gone, pre-recharge or prepay unknown or refused, expired) is given ``void_delay`` for a retry with
the same key; then it is closed as the sentinel closes an unpaid order — at WeChat first, then its
pre-recharge voided (``sentinel.close_left``) — so no pre-recharge stays pending for a hold window
with nobody to finish it.

The happy path costs two write transactions; the customer can pay only after the second (the
prepay id is returned only then), so the card system knows every top-up before money is taken.
"""

from __future__ import annotations

import time

from rc_common.admission import remaining
from rc_common.clock import rfc3339_china
from rc_common.errors import Refused, Unavailable
from rc_common.logs import get_logger
from rc_common.outcomes import Done, Rejected
from recharge_service.domain.merchant import MerchantConfig
from recharge_service.domain.numbers import new_order_no
from recharge_service.domain.order import Channel, OrderStatus, RechargeOrder
from recharge_service.service_layer.actor import actor
from recharge_service.service_layer.commands import CreateRechargeOrder
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.holding import (
    RELEASED_AT,
    OrderLease,
    acquire,
    holding,
    holding_for_insert,
    lease_of,
    release,
)
from recharge_service.service_layer.holding import check as check_lease
from recharge_service.service_layer.limits import check_open_for, check_open_orders, check_rate
from recharge_service.service_layer.merchants import merchant_for_new_order, merchant_of
from recharge_service.service_layer.orders import change_order, flow
from recharge_service.service_layer.ports import CREATE_PREPAY, PRE_RECHARGE, VOIDED, CardRecharge
from recharge_service.service_layer.sentinel import close_left
from recharge_service.service_layer.storage import DuplicateKey

log = get_logger("create")


async def create_recharge_order(command: CreateRechargeOrder, deps: Deps) -> RechargeOrder:
    card_no, pay_amount_fen, channel, key, openid = command.validated()
    merchant = await merchant_for_new_order(deps.merchants, command.merchant_id, channel)
    left = remaining()
    if left is not None and left <= 0:  # nobody waits for the answer: start nothing
        raise Unavailable("CALLER_GONE", "the caller gave up before the order was created")
    async with flow(deps):
        order, lease = await _find_or_insert(deps, merchant, card_no, pay_amount_fen, channel, key, openid)
        if order.status is OrderStatus.CREATED:
            order = await _work_on(deps, order, lease)
    if order.status is OrderStatus.REJECTED:
        raise Refused(
            order.failure_reason or "REJECTED", "the card system refused this top-up", order_no=order.order_no
        )
    return order


async def _work_on(deps: Deps, order: RechargeOrder, lease: OrderLease | None) -> RechargeOrder:
    """Pre-recharge and prepay a CREATED order, holding its lease: the one its insert took, or —
    a retry resuming it — one taken now (held by another request: UNAVAILABLE ORDER_BUSY)."""
    if lease is None:
        lease = await acquire(deps, order.order_no, f"{deps.node}/create", deps.lease)
        if lease is None:
            raise Unavailable(
                "ORDER_BUSY",
                "another request is working on this order; retry with the same key",
                order_no=order.order_no,
            )
    try:
        async with holding(deps, lease):
            record: CardRecharge | None = None
            if not order.pre_recharge_recorded:
                order, record = await _pre_recharge(deps, order)
            if order.status is OrderStatus.CREATED:
                order = await _create_prepay(deps, order, record)
    finally:
        if order.status not in RELEASED_AT:  # still CREATED: the retry resumes at once
            await release(deps, lease)
            if order.status is OrderStatus.CREATED:  # left: closed after void_delay unless resumed
                order_no = order.order_no
                deps.background.spawn_later(
                    f"left:{order_no}", deps.void_delay.total_seconds(), lambda: close_left(deps, order_no)
                )
    return order


async def _find_or_insert(
    deps: Deps,
    merchant: MerchantConfig,
    card_no: str,
    pay_amount_fen: int,
    channel: Channel,
    key: str,
    openid: str,
) -> tuple[RechargeOrder, OrderLease | None]:
    """The order of this key (no lease), or a new one inserted leased to this request."""
    for _ in range(2):
        async with deps.uow() as uow:
            existing = await uow.orders.get_by_idempotency_key(merchant.merchant_id, key)
            if existing is not None:
                if not existing.same_request(card_no, pay_amount_fen, channel, openid):
                    raise Refused(
                        "IDEMPOTENCY_KEY_REUSED",
                        "this idempotency key was used for a different top-up",
                        order_no=existing.order_no,
                    )
                return existing, None
            # Limits apply to new orders only (a replay above returns what is recorded).
            if merchant.max_open_orders:
                check_open_orders(merchant, await uow.orders.count_open(merchant.merchant_id))
            if deps.caps.per_card or deps.caps.per_payer:
                open_orders = await uow.orders.count_open_for(merchant.merchant_id, card_no, openid)
                check_open_for(deps.caps, card_no, open_orders)
            check_rate(deps.create_rates, merchant)
            now = deps.clock()
            order = RechargeOrder(
                order_no=new_order_no(now),
                idempotency_key=key,
                card_no=card_no,
                channel=channel,
                pay_amount_fen=pay_amount_fen,
                payer_openid=openid,
                created_at=now,
                updated_at=now,
                expires_at=now + merchant.order_expiry,
                merchant_id=merchant.merchant_id,
                merchant_version=merchant.version,
            )
            lease = lease_of(order.order_no, f"{deps.node}/create", 1, deps.lease, time.monotonic())
            with holding_for_insert(lease):
                await uow.orders.add(order)
            uow.announce(order.order_no, PRE_RECHARGE, now, actor(), "attempt 1: sent, answer pending")
            uow.announce(
                order.order_no,
                CREATE_PREPAY,
                now,
                actor(),
                "attempt 1: sent once the pre-recharge is recorded, answer pending",
            )
            try:
                await uow.commit()
            except DuplicateKey:
                continue  # another request with the same key won the insert: read theirs
            log.info("order_created", order_no=order.order_no, card_no=card_no, pay_amount_fen=pay_amount_fen)
            return order, lease
    raise Unavailable("ORDER_CREATE_CONFLICT", "could not create or find the order; retry with the same key")


async def _pre_recharge(deps: Deps, order: RechargeOrder) -> tuple[RechargeOrder, CardRecharge | None]:
    """The card system's record (recorded later, with the prepay), or the order as refused."""
    check_lease(order.order_no)  # changes something elsewhere: only while ours
    outcome = await deps.card.pre_recharge(
        order.order_no, order.card_no, order.pay_amount_fen, order.merchant_id
    )
    if isinstance(outcome, Done) and outcome.value.status != VOIDED:
        return order, outcome.value
    if isinstance(outcome, Rejected) or isinstance(outcome, Done):
        reason = outcome.reason if isinstance(outcome, Rejected) else "RECHARGE_VOIDED"

        def rejected(current: RechargeOrder) -> bool:
            if current.status is not OrderStatus.CREATED:
                return False
            current.failure_reason = reason
            current.transition(OrderStatus.REJECTED, deps.clock(), detail=f"pre-recharge refused: {reason}")
            return True

        return await change_order(deps, order.order_no, rejected), None
    await _note_undecided(deps, order.order_no, f"PreRecharge {outcome.code}: {outcome.detail}", None)
    raise Unavailable(
        "PRE_RECHARGE_UNKNOWN",
        "the card system did not answer; retry with the same key",
        order_no=order.order_no,
    )


def _record(current: RechargeOrder, record: CardRecharge | None) -> bool:
    """Put the card system's answer on a CREATED order that has none yet; True when it did."""
    if record is None or current.status is not OrderStatus.CREATED or current.pre_recharge_recorded:
        return False
    current.record_pre_recharge(record.bonus_fen, record.credit_amount_fen, record.rule_version)
    return True


async def _create_prepay(deps: Deps, order: RechargeOrder, record: CardRecharge | None) -> RechargeOrder:
    if deps.clock() >= order.expires_at:
        if record is not None:
            await change_order(deps, order.order_no, lambda current: _record(current, record))
        raise Refused("ORDER_EXPIRED", "this order expired before it could be paid", order_no=order.order_no)
    merchant = await merchant_of(deps.merchants, order)
    check_lease(order.order_no)  # changes something elsewhere: only while ours
    outcome = await deps.payments.create_prepay(
        merchant.wechat,
        order.order_no,
        f"储值卡充值 {order.card_no}",
        order.pay_amount_fen,
        order.payer_openid,
        rfc3339_china(order.expires_at),
    )
    if isinstance(outcome, Done):
        prepay_id = outcome.value

        def awaiting(current: RechargeOrder) -> bool:
            recorded = _record(current, record)
            if current.status is not OrderStatus.CREATED or not current.pre_recharge_recorded:
                return recorded
            current.prepay_id = prepay_id
            current.transition(OrderStatus.AWAITING_PAYMENT, deps.clock(), detail=f"prepay {prepay_id}")
            return True

        return await change_order(deps, order.order_no, awaiting, known=order)
    if isinstance(outcome, Rejected):
        # Nobody can pay this order; it stays CREATED and is closed (void first) after void_delay.
        await _note_undecided(deps, order.order_no, f"CreatePrepay refused: {outcome.reason}", record)
        raise Refused(
            "PREPAY_REFUSED",
            f"WeChat Pay refused the prepay order: {outcome.reason}",
            order_no=order.order_no,
        )
    await _note_undecided(deps, order.order_no, f"CreatePrepay {outcome.code}: {outcome.detail}", record)
    raise Unavailable(
        "PREPAY_UNKNOWN", "WeChat Pay did not answer; retry with the same key", order_no=order.order_no
    )


async def _note_undecided(deps: Deps, order_no: str, error: str, record: CardRecharge | None) -> None:
    def noted(current: RechargeOrder) -> bool:
        _record(current, record)
        current.note_undecided(error)
        return True

    await change_order(deps, order_no, noted)
