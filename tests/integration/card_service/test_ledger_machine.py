"""A hypothesis state machine drives the service layer on a temp SQLite file and checks, after
every step, that each balance equals the sum of its journal and matches a simple model, that no
balance is negative, and that each order number was credited at most once (exactly once iff
SUCCEEDED). One rule fires confirm, void and spends concurrently on one card. The two cards belong
to two merchants with rules of their own: every bonus follows its card's merchant's rule, and
calls naming the other merchant find nothing and change nothing."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, rule

from card_service.adapters.unit_of_work import create_schema, uow_factory
from card_service.domain import commands
from card_service.domain.journal import JournalKind
from card_service.domain.recharges import PreRechargeStatus
from card_service.domain.rules import BonusTier, Limits
from card_service.service_layer import cards, recharges, rules
from card_service.service_layer import consumes as spend
from card_service.service_layer.context import CardContext
from rc_common.db import Database
from rc_common.errors import NotFound, Refused

CARDS = ("6200000000000001", "6200000000000002")
MERCHANT_OF = {CARDS[0]: "m-a", CARDS[1]: "m-b"}
OTHER_MERCHANT = {"m-a": "m-b", "m-b": "m-a"}
AMOUNTS = st.sampled_from([100, 1_000, 5_000, 20_000])


class LedgerMachine(RuleBasedStateMachine):
    orders = Bundle("orders")
    spends = Bundle("spends")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.workdir = Path(tempfile.mkdtemp(prefix="ledger-machine-"))
        self.db = Database(f"sqlite+aiosqlite:///{self.workdir / 'card.db'}")
        self.ctx = CardContext(uow_factory(self.db), Limits(100, 50_000, 120_000))
        self.balance: Counter[str] = Counter()
        self.credit_of: dict[str, tuple[str, int]] = {}
        self.status: dict[str, PreRechargeStatus] = {}
        self.spent: dict[str, tuple[str, int, bool]] = {}
        #: Each merchant's rule as the model knows it: (version, bonus of the 1_000 tier).
        self.rule_of: dict[str, tuple[int, int]] = {merchant: (0, 0) for merchant in MERCHANT_OF.values()}
        self.counter = 0

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def next_key(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    @initialize()
    def open_cards(self) -> None:
        self.run(create_schema(self.db))
        for card_no in CARDS:
            merchant_id = MERCHANT_OF[card_no]
            self.run(cards.open_card(self.ctx, commands.OpenCard(card_no, merchant_id)))
            order_no = self.next_key("R")
            self.run(recharges.pre_recharge(
                self.ctx, commands.StartPreRecharge(order_no, card_no, 20_000, merchant_id)
            ))
            self.credit_of[order_no] = (card_no, 20_000)
            self.status[order_no] = PreRechargeStatus.RECHARGING
            answer = self.run(recharges.confirm_recharge(self.ctx, commands.ConfirmRecharge(order_no)))
            self.record(order_no, answer.status)

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    @rule(target=orders, card_no=st.sampled_from(CARDS), pay=AMOUNTS)
    def pre_recharge(self, card_no: str, pay: int) -> str:
        order_no = self.next_key("R")
        merchant_id = MERCHANT_OF[card_no]
        try:
            recharge = self.run(recharges.pre_recharge(
                self.ctx, commands.StartPreRecharge(order_no, card_no, pay, merchant_id)
            ))
        except Refused as refused:
            assert refused.reason in ("BALANCE_CAP_EXCEEDED", "CARD_FROZEN")
            return order_no  # unknown to the card system: confirm is NOT_FOUND, void a tombstone
        version, bonus = self.rule_of[merchant_id]
        expected_bonus = 0 if version == 0 or pay < 1_000 else (bonus * 2 if pay >= 20_000 else bonus)
        assert (recharge.merchant_id, recharge.rule_version, recharge.bonus_fen) == (
            merchant_id, version, expected_bonus
        )
        self.credit_of[order_no] = (card_no, recharge.credit_amount_fen)
        self.status[order_no] = PreRechargeStatus.RECHARGING
        return order_no

    def record(self, order_no: str, status: PreRechargeStatus) -> None:
        before = self.status.get(order_no)
        if before in (PreRechargeStatus.SUCCEEDED, PreRechargeStatus.VOIDED):
            assert status is before, f"{order_no}: {before} became {status}"
        if status is PreRechargeStatus.SUCCEEDED and before is PreRechargeStatus.RECHARGING:
            card_no, credit = self.credit_of[order_no]
            self.balance[card_no] += credit
        self.status[order_no] = status

    @rule(order_no=orders)
    def confirm(self, order_no: str) -> None:
        if order_no not in self.status:
            return
        try:
            answer = self.run(recharges.confirm_recharge(self.ctx, commands.ConfirmRecharge(order_no)))
        except Refused as refused:
            assert refused.reason == "CARD_FROZEN"
            return
        self.record(order_no, answer.status)

    @rule(card_no=st.sampled_from(CARDS), pay=AMOUNTS)
    def pre_recharge_through_the_other_merchant(self, card_no: str, pay: int) -> None:
        other = OTHER_MERCHANT[MERCHANT_OF[card_no]]
        try:
            self.run(recharges.pre_recharge(
                self.ctx, commands.StartPreRecharge(self.next_key("R"), card_no, pay, other)
            ))
        except Refused as refused:
            assert refused.reason == "CARD_NOT_FOUND"
        else:
            raise AssertionError("another merchant pre-recharged the card")

    @rule(order_no=orders)
    def confirm_or_void_naming_the_other_merchant(self, order_no: str) -> None:
        if order_no not in self.credit_of:
            return
        other = OTHER_MERCHANT[MERCHANT_OF[self.credit_of[order_no][0]]]
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: recharges.confirm_recharge(self.ctx, commands.ConfirmRecharge(order_no, other)),
            lambda: recharges.void_recharge(self.ctx, commands.VoidRecharge(order_no, "foreign", other)),
            lambda: recharges.get_recharge(self.ctx, order_no, other),
        ]
        for call in calls:
            try:
                self.run(call())
            except NotFound:
                continue
            raise AssertionError(f"{order_no} was seen by another merchant")

    @rule(order_no=orders)
    def void(self, order_no: str) -> None:
        answer = self.run(recharges.void_recharge(self.ctx, commands.VoidRecharge(order_no, "test")))
        self.record(order_no, answer.status)

    @rule(target=spends, card_no=st.sampled_from(CARDS), amount=AMOUNTS)
    def consume(self, card_no: str, amount: int) -> str:
        request_id = self.next_key("C")
        try:
            consume = commands.Consume(request_id, card_no, amount, MERCHANT_OF[card_no])
            self.run(spend.consume(self.ctx, consume))
        except Refused as refused:
            assert refused.reason in ("INSUFFICIENT_BALANCE", "CARD_FROZEN")
            assert refused.reason == "CARD_FROZEN" or amount > self.balance[card_no]
            return request_id
        self.balance[card_no] -= amount
        self.spent[request_id] = (card_no, amount, False)
        return request_id

    @rule(request_id=consumes(spends))
    def reverse(self, request_id: str) -> None:
        if request_id not in self.spent:
            return
        self.run(spend.reverse_consume(self.ctx, commands.ReverseConsume(request_id)))
        card_no, amount, _ = self.spent[request_id]
        self.balance[card_no] += amount
        self.spent[request_id] = (card_no, amount, True)

    @rule(card_no=st.sampled_from(CARDS), frozen=st.booleans())
    def freeze_or_unfreeze(self, card_no: str, frozen: bool) -> None:
        change = cards.freeze_card if frozen else cards.unfreeze_card
        self.run(change(self.ctx, card_no))

    @rule(merchant_id=st.sampled_from(sorted(OTHER_MERCHANT)), bonus=st.integers(0, 3_000))
    def change_rule(self, merchant_id: str, bonus: int) -> None:
        """One merchant's next version; the other merchant's bonuses must not move."""
        tiers = (BonusTier(1_000, bonus), BonusTier(20_000, bonus * 2))
        cmd = commands.SetRechargeRule(merchant_id, tiers, Limits())
        stored = self.run(rules.set_recharge_rule(self.ctx, cmd))
        assert (stored.merchant_id, stored.version) == (merchant_id, self.rule_of[merchant_id][0] + 1)
        self.rule_of[merchant_id] = (stored.version, bonus)

    @rule(order_no=orders, amounts=st.lists(AMOUNTS, min_size=1, max_size=4))
    def race(self, order_no: str, amounts: list[int]) -> None:
        """Confirm, void and spends on the order's card, all at once."""
        card_no = self.credit_of.get(order_no, (CARDS[0], 0))[0]
        ids = [self.next_key("C") for _ in amounts]

        async def together() -> list[Any]:
            calls = [
                recharges.confirm_recharge(self.ctx, commands.ConfirmRecharge(order_no)),
                recharges.void_recharge(self.ctx, commands.VoidRecharge(order_no, "race")),
                *(
                    spend.consume(self.ctx, commands.Consume(i, card_no, a))
                    for i, a in zip(ids, amounts, strict=True)
                ),
            ]
            return await asyncio.gather(*calls, return_exceptions=True)

        results = self.run(together())
        for answer in results[:2]:
            if not isinstance(answer, BaseException):
                self.record(order_no, answer.status)
            else:
                assert isinstance(answer, Refused) or "no pre-recharge" in str(answer), answer
        for request_id, amount, answer in zip(ids, amounts, results[2:], strict=True):
            if isinstance(answer, Refused):
                continue
            assert not isinstance(answer, BaseException), answer
            self.spent[request_id] = (card_no, amount, False)
            self.balance[card_no] -= amount
        # The spends may have run before or after the credit; the invariant checks the end state.

    @invariant()
    def balances_equal_their_journal_and_the_model(self) -> None:
        if self.counter == 0:  # before initialize
            return
        for card_no in CARDS:
            view = self.run(cards.get_card(self.ctx, card_no))
            entries = self.run(cards.list_journal(self.ctx, card_no, 0, 500)).entries
            assert view.card.balance_fen == sum(e.amount_fen for e in entries)
            assert view.card.balance_fen >= 0
            assert all(e.balance_after_fen >= 0 for e in entries)
            running = 0
            for entry in entries:
                running += entry.amount_fen
                assert entry.balance_after_fen == running
            assert view.card.balance_fen == self.balance[card_no]
            pending = sum(
                credit
                for order_no, (owner, credit) in self.credit_of.items()
                if owner == card_no and self.status[order_no] is PreRechargeStatus.RECHARGING
            )
            assert view.pending_recharge_fen == pending
            principals = Counter(e.business_key for e in entries if e.kind is JournalKind.RECHARGE_PRINCIPAL)
            for order_no, count in principals.items():
                assert count == 1 and self.status[order_no] is PreRechargeStatus.SUCCEEDED


LedgerMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_ledger_keeps_balance_equal_to_journal_sum = LedgerMachine.TestCase
