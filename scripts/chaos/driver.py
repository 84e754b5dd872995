"""The chaos driver: customers of several merchants topping up cards, paying, and spending the
moment the credit lands.

Every choice (merchant, card, amount, pay or walk away, freeze the card, spend how much) is drawn
up front from ``random.Random(seed)`` into a list of :class:`OrderPlan`, so the same seed replays
the same driver. Orders go round the merchants in turn; each card belongs to one merchant (its
number says which: ``88`` + run tag + merchant index + card). Each top-up names its merchant on
every call that has one: ``CreateRechargeOrder`` with a deterministic idempotency key (retried
with the same key while the outcome is unknown), optionally ``FreezeCard`` (a *doomed* order: its
credit will be refused, so the refund path must run), ``PayerSimulator.Pay``, and for spenders a
watcher that polls the card system's ``GetRecharge`` and calls ``Consume`` as soon as it says
SUCCEEDED. What the driver did and saw, as which merchant, goes to a
:class:`scripts.chaos.invariants.DriverLog`.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc

from protos.card.v1 import card_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from rc_common.outcomes import Done, Rejected
from scripts.chaos.invariants import DriverLog, Spend
from scripts.chaos.rpc import Stubs, retrying
from scripts.merchants import CHAOS_MERCHANTS

AMOUNTS_FEN = (100, 500, 1_000, 5_000, 20_000, 20_000, 50_000, 100_000, 150_000)
#: Below the card system's default minimum top-up: the pre-recharge is refused -> REJECTED.
TOO_SMALL_FEN = 50
#: A bonus rule (pay >= ¥1000 get ¥200, ...); each chaos merchant has its own (scripts/merchants.py).
BONUS_TIERS = ((100_000, 20_000), (50_000, 8_000), (20_000, 2_000))
#: The merchants a run spreads its orders over, unless told otherwise.
MERCHANT_IDS = tuple(m.merchant_id for m in CHAOS_MERCHANTS)
#: How the card system may answer OpenCard for a card that exists already.
_CARD_EXISTS = (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION)
CHANNELS = (recharge_pb2.CHANNEL_OFFICIAL_ACCOUNT, recharge_pb2.CHANNEL_POS, recharge_pb2.CHANNEL_THIRD_PARTY)


@dataclass(frozen=True)
class OrderPlan:
    index: int
    key: str
    merchant_id: str
    card_no: str
    amount_fen: int
    channel: recharge_pb2.Channel.ValueType
    pay: bool
    doomed: bool
    spend_share: float  # 0 = does not spend


@dataclass(frozen=True)
class Shares:
    doomed: float = 0.0
    abandon: float = 0.05
    reject: float = 0.03
    spend: float = 0.5


def run_tag(profile: str, seed: int, nonce: str = "") -> str:
    """Six digits naming one run's cards, stable for (profile, seed, nonce)."""
    digest = hashlib.sha256(f"{profile}|{seed}|{nonce}".encode()).hexdigest()
    return f"{int(digest[:12], 16) % 1_000_000:06d}"


def plan_orders(
    seed: int, orders: int, tag: str, shares: Shares, merchants: Sequence[str] = MERCHANT_IDS
) -> list[OrderPlan]:
    """``orders`` top-ups, round the ``merchants`` in turn (at most 10), each on a card of its own
    merchant: a shared pool per merchant, or a card of its own for a doomed order (it is frozen)."""
    if not 1 <= len(merchants) <= 10:
        raise ValueError("between 1 and 10 merchants: a card number has one digit for its merchant")
    rng = random.Random(seed)
    pool = max(2, orders // (8 * len(merchants)))
    plans = []
    for i in range(orders):
        which = i % len(merchants)
        doomed = rng.random() < shares.doomed
        rejected = not doomed and rng.random() < shares.reject
        abandon = not doomed and not rejected and rng.random() < shares.abandon
        amount = TOO_SMALL_FEN if rejected else rng.choice(AMOUNTS_FEN)
        card = 5_000_000 + i if doomed else rng.randrange(pool)
        spends = not doomed and not abandon and not rejected and rng.random() < shares.spend
        plans.append(
            OrderPlan(
                index=i,
                key=f"chaos-{tag}-{i:05d}",
                merchant_id=merchants[which],
                card_no=f"88{tag}{which}{card:07d}",
                amount_fen=amount,
                channel=rng.choice(CHANNELS),
                pay=not abandon and not rejected,
                doomed=doomed,
                spend_share=round(rng.uniform(0.3, 1.0), 3) if spends else 0.0,
            )
        )
    return plans


@dataclass
class Progress:
    created: int = 0
    rejected: int = 0
    create_unknown: int = 0
    paid: int = 0
    pay_failed: int = 0
    frozen: int = 0
    spends_done: int = 0
    spends_refused: int = 0
    finished: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self, total: int) -> str:
        return (
            f"created {self.created}/{total} rejected {self.rejected} paid {self.paid} "
            f"frozen {self.frozen} spent {self.spends_done} (refused {self.spends_refused})"
        )


class Driver:
    def __init__(
        self, stubs: Stubs, plans: list[OrderPlan], concurrency: int, *, spend_wait_s: float = 60.0
    ) -> None:
        self._stubs = stubs
        self._plans = plans
        self._slots = asyncio.Semaphore(concurrency)
        self._watch_slots = asyncio.Semaphore(max(8, concurrency))
        self._spend_wait_s = spend_wait_s
        self._watchers: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self.log = DriverLog()
        self.progress = Progress()
        #: Called with the count of answered creates (the crash monkey's clock).
        self.on_created: Callable[[int], None] = lambda count: None

    @property
    def cards(self) -> list[str]:
        return sorted({p.card_no for p in self._plans})

    @property
    def card_merchants(self) -> dict[str, str]:
        """card_no -> the merchant it is opened for."""
        return {p.card_no: p.merchant_id for p in self._plans}

    @property
    def merchants(self) -> list[str]:
        return sorted({p.merchant_id for p in self._plans})

    async def prepare(self) -> None:
        """Every card of the run, opened for its merchant (the merchants themselves, with their
        bonus rules, are opened first: :func:`scripts.merchants.open_merchants`)."""
        admin = self._stubs.card_admin
        slots = asyncio.Semaphore(16)

        async def open_card(card_no: str, merchant_id: str) -> None:
            async with slots:
                try:
                    request = card_pb2.OpenCardRequest(
                        card_no=card_no, holder_name=f"chaos {card_no[-6:]}", merchant_id=merchant_id
                    )
                    await admin.OpenCard(request, timeout=10)
                except grpc.aio.AioRpcError as error:
                    if error.code() not in _CARD_EXISTS:
                        raise

        await asyncio.gather(*(open_card(c, m) for c, m in sorted(self.card_merchants.items())))
        self.log.card_merchants.update(self.card_merchants)

    async def run(self) -> None:
        await asyncio.gather(*(self._top_up(p) for p in self._plans))

    async def stop_watchers(self) -> None:
        self._stopping.set()
        if self._watchers:
            await asyncio.gather(*self._watchers, return_exceptions=True)

    async def _top_up(self, plan: OrderPlan) -> None:
        async with self._slots:
            try:
                order = await self._create(plan)
                self.on_created(self.progress.created + self.progress.rejected)
                if order is not None:
                    if plan.doomed:
                        await self._freeze(plan.card_no)
                    if plan.pay:
                        await self._pay(order.order_no)
                    if plan.spend_share and self.log.payments.get(order.order_no) == "done":
                        task = asyncio.ensure_future(self._spend_when_credited(plan, order.order_no))
                        self._watchers.add(task)
                        task.add_done_callback(self._watchers.discard)
            except Exception as exc:  # a driver bug must show in the report, not stop the run
                self.progress.errors.append(f"{plan.key}: {exc!r}")
            finally:
                self.progress.finished += 1

    async def _create(self, plan: OrderPlan) -> recharge_pb2.RechargeOrder | None:
        request = recharge_pb2.CreateRechargeOrderRequest(
            card_no=plan.card_no,
            pay_amount_fen=plan.amount_fen,
            channel=plan.channel,
            idempotency_key=plan.key,
            payer_openid=f"o-chaos-{plan.card_no[-6:]}",
            merchant_id=plan.merchant_id,
        )
        outcome = await retrying(lambda: self._stubs.center.CreateRechargeOrder(request, timeout=15))
        if isinstance(outcome, Done):
            self.progress.created += 1
            order: recharge_pb2.RechargeOrder = outcome.value
            self.log.created[plan.key] = order.order_no
            self.log.merchants[order.order_no] = plan.merchant_id
            return order
        if isinstance(outcome, Rejected):
            self.progress.rejected += 1
        else:
            self.progress.create_unknown += 1
            self.progress.errors.append(f"{plan.key}: create still unknown: {outcome.code} {outcome.detail}")
        return None

    async def _freeze(self, card_no: str) -> None:
        outcome = await retrying(
            lambda: self._stubs.card_admin.FreezeCard(card_pb2.FreezeCardRequest(card_no=card_no), timeout=5)
        )
        if isinstance(outcome, Done):
            self.progress.frozen += 1
        else:
            self.progress.errors.append(f"freeze {card_no}: {outcome}")

    async def _pay(self, order_no: str) -> None:
        request = wechatpay_pb2.PayRequest(out_trade_no=order_no)
        outcome = await retrying(lambda: self._stubs.payer.Pay(request, timeout=10))
        if isinstance(outcome, Done) and outcome.value.trade_state == wechatpay_pb2.TRADE_STATE_SUCCESS:
            self.log.payments[order_no] = "done"
            self.progress.paid += 1
        else:
            self.log.payments[order_no] = "refused" if isinstance(outcome, Rejected | Done) else "unknown"
            self.progress.pay_failed += 1

    async def _spend_when_credited(self, plan: OrderPlan, order_no: str) -> None:
        """Poll the card system; spend part of the credit the moment it lands."""
        async with self._watch_slots:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._spend_wait_s
            credit_fen = 0
            query = card_pb2.GetRechargeRequest(order_no=order_no, merchant_id=plan.merchant_id)
            while not self._stopping.is_set() and loop.time() < deadline:
                try:
                    pre = await self._stubs.card.GetRecharge(query, timeout=3)
                except grpc.aio.AioRpcError:
                    pre = None
                if pre is not None and pre.status == card_pb2.PRE_RECHARGE_STATUS_SUCCEEDED:
                    credit_fen = pre.credit_amount_fen
                    break
                if pre is not None and pre.status == card_pb2.PRE_RECHARGE_STATUS_VOIDED:
                    return
                await asyncio.sleep(0.05)
            if not credit_fen:
                return
            amount = max(1, int(credit_fen * plan.spend_share))
            request_id = f"{plan.key}-spend"
            request = card_pb2.ConsumeRequest(
                request_id=request_id, card_no=plan.card_no, amount_fen=amount, merchant_id=plan.merchant_id
            )
            outcome = await retrying(lambda: self._stubs.card.Consume(request, timeout=5), attempts=20)
            self.log.spends.append(Spend(request_id, plan.card_no, amount, outcome.outcome, plan.merchant_id))
            if isinstance(outcome, Done):
                self.progress.spends_done += 1
            elif isinstance(outcome, Rejected):
                self.progress.spends_refused += 1
