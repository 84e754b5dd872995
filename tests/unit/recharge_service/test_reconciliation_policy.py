"""Who may reconcile: operators and approvers run, readers read; the recharge center (and readers)
export the card journal; nobody else."""

from __future__ import annotations

import pytest

from rc_common.auth import APPROVER, OPERATOR, VIEWER, Principal
from rc_common.policy import POS, RECHARGE, decide

RUN = "/recharge.v1.RechargeOps/RunReconciliation"
GET = "/recharge.v1.RechargeOps/GetReconciliation"
EXPORT = "/card.v1.CardAdmin/ExportJournal"


def person(*roles: str) -> Principal:
    return Principal(subject="carol", roles=frozenset(roles))


@pytest.mark.parametrize(
    ("principal", "method", "allowed"),
    [
        (person(OPERATOR), RUN, True),
        (person(APPROVER), RUN, True),
        (person(VIEWER), RUN, False),
        (person(VIEWER), GET, True),
        (person(), GET, False),
        (Principal(loopback_plaintext=True), RUN, False),
        (Principal(service=RECHARGE), EXPORT, True),
        (Principal(loopback_plaintext=True), EXPORT, True),
        (person(VIEWER), EXPORT, True),
        (Principal(service=POS), EXPORT, False),
        (Principal(service=POS), "/card.v1.CardAdmin/OpenCard", False),
    ],
)
def test_the_policy_for_reconciliation(principal: Principal, method: str, allowed: bool) -> None:
    assert decide(principal, method).allowed is allowed
