"""Issue 14, item 5: every RPC of every service, fed generated, raw and mutated requests.

For every request the server can decode: never UNKNOWN or INTERNAL, never a hang, never an
exception class name or SQL in the details, Notify always SUCCESS or FAIL. Afterwards every
service is still SERVING and the card system's money holds (balance = journal sum, never
negative, pending = the open pre-recharges). Seed and budget: see conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from protos.card.v1 import card_pb2
from protos.recharge.v1 import recharge_pb2
from tests.fuzz.calls import Caller, Rpc, every_rpc
from tests.fuzz.checks import all_serving, money_violations, problems, undo_faults
from tests.fuzz.conftest import Budget, Known
from tests.fuzz.strategies import message, mutated, valid_message

RPCS = every_rpc()
MAX_KNOWN_ORDERS = 200
Example = tuple[Rpc, bytes]


def _remember(known: Known, rpc: Rpc, payload: bytes, response: bytes) -> None:
    """Order numbers a pre-recharge may carry: those sent to the card system, those the recharge
    center created (for the pending check afterwards)."""
    if rpc.method.name == "PreRecharge" and rpc.decodes(payload):
        known.sent_order_nos.add(card_pb2.PreRechargeRequest.FromString(payload).order_no)
    if rpc.method.name == "CreateRechargeOrder" and response:
        order_no = recharge_pb2.RechargeOrder.FromString(response).order_no
        known.sent_order_nos.add(order_no)
        if len(known.values["out_trade_no"]) < MAX_KNOWN_ORDERS:  # later requests may name it
            known.values["order_no"].append(order_no)
            known.values["out_trade_no"].append(order_no)


def exercise(caller: Caller, known: Known, budget: Budget, example: Example) -> list[str]:
    rpc, payload = example
    decodable = rpc.decodes(payload)
    answer = caller.call(rpc, payload, budget.deadline_s)
    _remember(known, rpc, payload, answer.response)
    undo_faults(caller, rpc, answer, budget.deadline_s)
    return problems(rpc, decodable, answer)


def fuzz(caller: Caller, known: Known, budget: Budget, examples: st.SearchStrategy[Example]) -> None:
    @settings(
        max_examples=budget.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @seed(budget.seed)
    @given(examples)
    def run(example: Example) -> None:
        found = exercise(caller, known, budget, example)
        rpc, payload = example
        assert not found, f"{rpc.name} ({len(payload)} bytes, seed {budget.seed}): {found}"

    run()


def _serialized(rpc: Rpc) -> Callable[[Message], Example]:
    return lambda request: (rpc, request.SerializeToString())


def test_generated_requests_of_every_rpc_are_answered(caller: Caller, known: Known, budget: Budget) -> None:
    examples = st.sampled_from(RPCS).flatmap(
        lambda rpc: message(rpc.method.input_type, known.values).map(_serialized(rpc))
    )
    fuzz(caller, known, budget, examples)


def test_valid_requests_of_every_rpc_are_answered(caller: Caller, known: Known, budget: Budget) -> None:
    """Requests naming the stack's merchants, cards and orders: top-ups created and paid,
    consumptions and reversals, refunds — the traffic that moves money."""
    examples = st.sampled_from(RPCS).flatmap(
        lambda rpc: valid_message(rpc.method.input_type, known.values).map(_serialized(rpc))
    )
    fuzz(caller, known, budget, examples)


def test_raw_bytes_are_answered(caller: Caller, known: Known, budget: Budget) -> None:
    fuzz(caller, known, budget, st.tuples(st.sampled_from(RPCS), st.binary(max_size=300)))


def test_mutated_valid_requests_are_answered(caller: Caller, known: Known, budget: Budget) -> None:
    examples = st.sampled_from(RPCS).flatmap(
        lambda rpc: mutated(rpc.method.input_type, known.values).map(lambda data: (rpc, data))
    )
    fuzz(caller, known, budget, examples)


def test_every_rpc_answers_its_empty_request(caller: Caller, known: Known, budget: Budget) -> None:
    """The smallest well-formed request of each RPC (all fields default), once each."""
    found = {rpc.name: exercise(caller, known, budget, (rpc, b"")) for rpc in RPCS}
    assert {name: p for name, p in found.items() if p} == {}


def test_afterwards_every_service_serves_and_the_money_holds(
    caller: Caller, known: Known, budget: Budget
) -> None:
    assert all_serving(caller, budget.deadline_s) == {
        "recharge": "SERVING",
        "card": "SERVING",
        "wechat": "SERVING",
    }
    order_nos = known.sent_order_nos | set(known.values["order_no"])
    assert money_violations(caller, known.cards, order_nos, budget.deadline_s) == [], f"seed {budget.seed}"
