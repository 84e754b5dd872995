"""What the fuzz suite asserts of every answer, of the services afterwards, and of the money."""

from __future__ import annotations

import re
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.card.v1 import card_pb2, card_pb2_grpc
from protos.faults.v1 import faults_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from scripts.chaos import invariants as inv
from scripts.chaos.observation import Card, JournalEntry, Observation
from tests.fuzz.calls import Answer, Caller, Rpc

#: Never for a request the server could decode: UNKNOWN / INTERNAL are bugs, DEADLINE_EXCEEDED a hang.
FORBIDDEN = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED})
#: Internals that must never reach a caller (issue 14, F8).
LEAK = re.compile(
    r"<class '|Traceback|\b[A-Z][A-Za-z]*(Error|Exception)\b"
    r"|\bSELECT\b|\bINSERT INTO\b|\[SQL:|sqlalchemy|psycopg",
)


def problems(rpc: Rpc, decodable: bool, answer: Answer) -> list[str]:
    """What is wrong with ``answer`` ([] when nothing is)."""
    found = []
    if answer.code is grpc.StatusCode.DEADLINE_EXCEEDED:
        found.append("no answer within the deadline (a hang)")
    elif decodable and answer.code in FORBIDDEN:
        found.append(f"answered {answer.code.name} to a well-formed request: {answer.details!r}")
    if decodable and LEAK.search(answer.details):
        found.append(f"details leak internals: {answer.details!r}")
    if rpc.method.name == "Notify" and decodable:
        if answer.code is not grpc.StatusCode.OK:
            found.append(f"Notify must answer SUCCESS or FAIL, answered {answer.code.name}")
        elif wechatpay_pb2.NotifyAck.FromString(answer.response).code not in ("SUCCESS", "FAIL"):
            found.append("Notify answered neither SUCCESS nor FAIL")
    return found


def undo_faults(caller: Caller, rpc: Rpc, answer: Answer, timeout: float) -> None:
    """A fault plan the fuzzer happened to set is cleared at once (the next calls must not hang
    on a DELAY rule nor fail on an OUTAGE rule it chose)."""
    if rpc.method.name == "SetFaults" and answer.code is grpc.StatusCode.OK:
        clear = Rpc(rpc.target, rpc.method.containing_service.methods_by_name["ClearFaults"])
        cleared = caller.send(clear, faults_pb2.ClearFaultsRequest(), timeout)
        assert cleared.code is grpc.StatusCode.OK, f"ClearFaults after a fuzzed SetFaults: {cleared}"


def all_serving(caller: Caller, timeout: float) -> dict[str, str]:
    """Each service's overall health ("SERVING" unless something broke)."""
    states = {}
    for target in ("recharge", "card", "wechat"):
        stub = health_pb2_grpc.HealthStub(caller.channel(target))
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
            states[target] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as exc:
            states[target] = f"error {exc.code().name}"  # type: ignore[attr-defined]
    return states


def _journal(
    stub: card_pb2_grpc.CardSystemStub, card_no: str, merchant_id: str, timeout: float
) -> list[JournalEntry]:
    entries: list[JournalEntry] = []
    token = ""
    while True:
        request = card_pb2.ListJournalRequest(
            card_no=card_no, page_size=500, page_token=token, merchant_id=merchant_id
        )
        page = stub.ListJournal(request, timeout=timeout)
        entries += [
            JournalEntry(
                e.entry_id,
                e.card_no,
                card_pb2.JournalKind.Name(e.kind).removeprefix("JOURNAL_KIND_"),
                e.amount_fen,
                e.balance_after_fen,
                e.business_key,
            )
            for e in page.entries
        ]
        token = page.next_page_token
        if not token:
            return entries


def _open_pending(
    stub: card_pb2_grpc.CardSystemStub, card_no: str, order_nos: set[str], timeout: float
) -> int:
    """The credit amounts of ``card_no``'s RECHARGING pre-recharges among ``order_nos``."""
    total = 0
    for order_no in sorted(order_nos):
        try:
            pre = stub.GetRecharge(card_pb2.GetRechargeRequest(order_no=order_no), timeout=timeout)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):  # type: ignore[attr-defined]
                continue
            raise
        if pre.card_no == card_no and pre.status == card_pb2.PRE_RECHARGE_STATUS_RECHARGING:
            total += pre.credit_amount_fen
    return total


def money_violations(
    caller: Caller, cards: dict[str, str], order_nos: set[str], timeout: float, attempts: int = 20
) -> list[str]:
    """The card system's money invariants over ``cards`` (card_no -> merchant_id): the chaos
    checker's I4 (balance = journal sum, each balance_after chains, never negative), and pending
    = the sum of the card's open pre-recharges (among ``order_nos``, every order number a
    pre-recharge may carry). Each card is read until two reads around its pre-recharges agree
    (background confirms and voids may move it in between)."""
    stub = card_pb2_grpc.CardSystemStub(caller.channel("card"))
    cards_seen: dict[str, Card] = {}
    journals: dict[str, list[JournalEntry]] = {}
    found: list[str] = []
    for card_no, merchant_id in sorted(cards.items()):
        for attempt in range(attempts):
            before = stub.GetCard(card_pb2.GetCardRequest(card_no=card_no), timeout=timeout)
            pending = _open_pending(stub, card_no, order_nos, timeout)
            entries = _journal(stub, card_no, merchant_id, timeout)
            after = stub.GetCard(card_pb2.GetCardRequest(card_no=card_no), timeout=timeout)
            if before == after:
                break
            time.sleep(0.1 * (attempt + 1))
        else:
            found.append(f"card {card_no} never held still for a read")
            continue
        status = card_pb2.CardStatus.Name(after.status).removeprefix("CARD_STATUS_")
        cards_seen[card_no] = Card(
            card_no, status, after.balance_fen, after.pending_recharge_fen, merchant_id
        )
        journals[card_no] = entries
        if after.pending_recharge_fen != pending:
            found.append(
                f"card {card_no}: pending {after.pending_recharge_fen} fen"
                f" != open pre-recharges {pending} fen"
            )
        if after.pending_recharge_fen < 0:
            found.append(f"card {card_no}: negative pending {after.pending_recharge_fen} fen")
    result = inv.check(Observation(cards=cards_seen, journals=journals))
    entries = sum(len(e) for e in journals.values())
    pending = sum(c.pending_recharge_fen for c in cards_seen.values())
    print(f"fuzz money: {len(cards_seen)} cards, {entries} journal entries, {pending} fen pending")
    return found + [str(v) for v in result.violations]
