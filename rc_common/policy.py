"""Who may call what: the one policy table of all three services.

Each rule names a full method (``/pkg.Service/Method``) or a service prefix (``/pkg.Service/``);
the most specific rule wins (an exact method over its service's prefix). A method no rule names is
refused to everybody. A rule allows:

- ``services``: callers whose mutual-TLS certificate has one of these CNs (see ``rc_common.tls``);
- ``roles``: callers with a valid operator token holding one of these roles (``rc_common.auth``);
- ``anonymous_on_loopback``: development mode only — a caller with neither, on a server without
  TLS (which listens on loopback only). Customer-facing calls, and the simulators' service APIs
  that the recharge center calls, are allowed; operator and admin calls never are.
- ``OPEN``: anybody (health checking and reflection).

Refusals: no credentials, or a token that does not verify -> UNAUTHENTICATED; credentials that
this rule does not accept -> PERMISSION_DENIED (see ``rc_common.access``).
"""

from __future__ import annotations

from dataclasses import dataclass

from rc_common.auth import APPROVER, OPERATOR, TEST, VIEWER, Principal

#: Service identities: the CN of each certificate ``python -m scripts.certs`` makes.
RECHARGE, CARD, WECHAT, OPS, POS = "recharge", "card", "wechat", "ops", "pos"
IDENTITIES = (RECHARGE, CARD, WECHAT, OPS, POS)

READERS = frozenset({VIEWER, OPERATOR, APPROVER})
WRITERS = frozenset({OPERATOR, APPROVER})


@dataclass(frozen=True)
class Rule:
    services: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    anonymous_on_loopback: bool = False
    open: bool = False


OPEN = Rule(open=True)


def _rule(*services: str, roles: frozenset[str] = frozenset(), anonymous_on_loopback: bool = False) -> Rule:
    return Rule(frozenset(services), roles, anonymous_on_loopback)


POLICY: dict[str, Rule] = {
    # Everybody: liveness and the schema (grpcurl).
    "/grpc.health.v1.Health/": OPEN,
    "/grpc.reflection.v1alpha.ServerReflection/": OPEN,
    "/grpc.reflection.v1.ServerReflection/": OPEN,
    # The recharge center, customer side: POS gateways and partner apps.
    "/recharge.v1.RechargeCenter/": _rule(POS),
    "/recharge.v1.RechargeCenter/CreateRechargeOrder": _rule(POS, anonymous_on_loopback=True),
    "/recharge.v1.RechargeCenter/GetRechargeOrder": _rule(POS, roles=READERS, anonymous_on_loopback=True),
    "/recharge.v1.RechargeCenter/ListRechargeOrders": _rule(POS, roles=READERS),  # across customers
    # WeChat Pay's notifications (whose signature is verified again by the handler).
    "/wechatpay.v1.PaymentNotifications/Notify": _rule(WECHAT, anonymous_on_loopback=True),
    # Operators: reads for viewers, changes for operators and approvers.
    "/recharge.v1.RechargeOps/": _rule(roles=READERS),
    "/recharge.v1.RechargeOps/ResolveAnomaly": _rule(roles=WRITERS),
    "/recharge.v1.RechargeOps/RunSentinel": _rule(roles=WRITERS),
    "/recharge.v1.RechargeOps/PutMerchant": _rule(roles=WRITERS),
    "/recharge.v1.RechargeOps/RunReconciliation": _rule(roles=WRITERS),
    "/recharge.v1.RechargeOps/GetReconciliation": _rule(roles=READERS),
    # The operators' console (issue 17): reads for every reader; a four-eyes decision only by an
    # approver (the service also refuses the one who asked: SAME_OPERATOR).
    "/recharge.v1.RechargeOps/InspectOrder": _rule(roles=READERS),
    "/recharge.v1.RechargeOps/FindOrders": _rule(roles=READERS),
    "/recharge.v1.RechargeOps/ListApprovals": _rule(roles=READERS),
    "/recharge.v1.RechargeOps/GetOpsHealth": _rule(roles=READERS),
    "/recharge.v1.RechargeOps/DecideApproval": _rule(roles=frozenset({APPROVER})),
    # What merchants serve for our follow-ups (their POS callback servers).
    "/recharge.v1.RechargeCallbacks/": _rule(RECHARGE, anonymous_on_loopback=True),
    # The card system: the recharge center credits; the shop's POS reads and spends.
    "/card.v1.CardSystem/": _rule(RECHARGE, anonymous_on_loopback=True),
    "/card.v1.CardSystem/GetCard": _rule(RECHARGE, POS, roles=READERS, anonymous_on_loopback=True),
    "/card.v1.CardSystem/Consume": _rule(RECHARGE, POS, anonymous_on_loopback=True),
    "/card.v1.CardSystem/ReverseConsume": _rule(RECHARGE, POS, anonymous_on_loopback=True),
    "/card.v1.CardAdmin/": _rule(roles=WRITERS),
    # Reconciliation reads the day's journal: the recharge center, and people who may read.
    "/card.v1.CardAdmin/ExportJournal": _rule(RECHARGE, roles=READERS, anonymous_on_loopback=True),
    # WeChat Pay (simulator): the recharge center pays and refunds; the payer's side is a harness.
    "/wechatpay.v1.PaymentGateway/": _rule(RECHARGE, anonymous_on_loopback=True),
    "/wechatpay.v1.PayerSimulator/": _rule(POS, roles=frozenset({TEST}), anonymous_on_loopback=True),
    "/wechatpay.v1.MessageSimulator/SendTemplateMessage": _rule(RECHARGE, anonymous_on_loopback=True),
    "/wechatpay.v1.MessageSimulator/ListSentMessages": _rule(
        POS, roles=frozenset({TEST}), anonymous_on_loopback=True
    ),
    # Fault injection: served by the simulators only, and only for the test role.
    "/faults.v1.FaultControl/": _rule(roles=frozenset({TEST})),
}


def rule_for(method: str, policy: dict[str, Rule] = POLICY) -> Rule | None:
    """The most specific rule for ``method`` (exact, then its service's prefix); None: refused."""
    exact = policy.get(method)
    if exact is not None:
        return exact
    service = method[: method.rfind("/") + 1]
    return policy.get(service) if service else None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    #: When refused: UNAUTHENTICATED (nobody we know) or PERMISSION_DENIED (known, not allowed).
    unauthenticated: bool = False
    reason: str = ""


ALLOW = Decision(True)


def decide(principal: Principal, method: str, policy: dict[str, Rule] = POLICY) -> Decision:
    """May ``principal`` call ``method``? Pure: the table above, nothing else."""
    rule = rule_for(method, policy)
    if rule is not None and rule.open:
        return ALLOW
    if rule is not None and rule.anonymous_on_loopback and principal.loopback_plaintext:
        return ALLOW  # what an anonymous caller may do here, a caller with credentials may too
    if principal.anonymous:
        return Decision(False, unauthenticated=True, reason="AUTHENTICATION_REQUIRED")
    if rule is None:
        return Decision(False, reason="METHOD_NOT_IN_POLICY")
    if principal.service in rule.services or principal.roles & rule.roles:
        return ALLOW
    return Decision(False, reason="ROLE_REQUIRED" if rule.roles else "CALLER_NOT_ALLOWED")
