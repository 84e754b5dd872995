"""Operator tokens, the policy table and the plaintext-on-loopback rule, without I/O."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from rc_common.access import peer_host
from rc_common.auth import (
    APPROVER,
    OPERATOR,
    TEST,
    VIEWER,
    AuthKeyError,
    Principal,
    TokenRefused,
    issue_token,
    load_key,
    verify_token,
    write_key,
)
from rc_common.policy import POLICY, POS, RECHARGE, WECHAT, decide, rule_for
from rc_common.settings import InvalidSetting
from rc_common.tls import TlsConfigError, check_listen_setting, is_loopback, require_loopback_when_plaintext

KEY = bytes(range(32))
NOW = 1_800_000_000.0
ANONYMOUS_LOOPBACK = Principal(loopback_plaintext=True)


def person(*roles: str, subject: str = "carol") -> Principal:
    return Principal(subject=subject, roles=frozenset(roles), loopback_plaintext=True)


def test_a_token_names_its_subject_and_roles_until_it_expires() -> None:
    token = issue_token(KEY, "carol", [OPERATOR, VIEWER], ttl=60, now=NOW)
    assert verify_token(KEY, token, now=NOW + 59) == ("carol", frozenset({OPERATOR, VIEWER}))
    with pytest.raises(TokenRefused) as expired:
        verify_token(KEY, token, now=NOW + 60)
    assert expired.value.reason == "TOKEN_EXPIRED"


def _forge(token: str, **claims: object) -> str:
    prefix, body, mac = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{prefix}.{forged}.{mac}"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: _forge(t, roles=[APPROVER]),  # a role added without the key
        lambda t: _forge(t, sub="mallory"),
        lambda t: _forge(t, exp=4_000_000_000),
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: t.replace("rc1.", "rc2.", 1),
        lambda t: t.split(".")[0] + "." + t.split(".")[1],  # no signature
        lambda t: "",
        lambda t: "x" * 5000,
        lambda t: "rc1.!!!.???",
    ],
)
def test_a_tampered_or_malformed_token_is_invalid(mangle: object) -> None:
    token = issue_token(KEY, "carol", [VIEWER], ttl=60, now=NOW)
    with pytest.raises(TokenRefused) as refused:
        verify_token(KEY, mangle(token), now=NOW)  # type: ignore[operator]
    assert refused.value.reason == "TOKEN_INVALID"


def test_a_token_signed_with_another_key_is_invalid() -> None:
    token = issue_token(bytes(32), "carol", [OPERATOR], ttl=60, now=NOW)
    with pytest.raises(TokenRefused) as refused:
        verify_token(KEY, token, now=NOW)
    assert refused.value.reason == "TOKEN_INVALID"


def test_tokens_are_issued_only_for_known_roles_and_sane_subjects() -> None:
    for subject, roles, ttl in (("carol", ["root"], 60), ("", [VIEWER], 60), ("x" * 65, [VIEWER], 60),
                                ("carol", [VIEWER], 0)):
        with pytest.raises(ValueError):
            issue_token(KEY, subject, roles, ttl, now=NOW)


def test_the_key_file_is_hex_of_at_least_32_bytes_and_kept_private(tmp_path: Path) -> None:
    folder = tmp_path
    key = write_key(folder / "auth.key")
    assert load_key(folder / "auth.key") == key and len(key) == 32
    assert (folder / "auth.key").stat().st_mode & 0o077 == 0
    assert write_key(folder / "auth.key") == key  # kept, not replaced
    (folder / "short.key").write_text("00" * 16)
    (folder / "text.key").write_text("not hex")
    for name in ("short.key", "text.key", "missing.key"):
        with pytest.raises(AuthKeyError) as bad:
            load_key(folder / name)
        assert name in str(bad.value)


# -- the table ----------------------------------------------------------------------------------

OPS_READS = ("ListAnomalies", "GetOrderTimeline", "GetMerchant", "ListMerchants")
OPS_WRITES = ("ResolveAnomaly", "RunSentinel", "PutMerchant")


@pytest.mark.parametrize(
    "method",
    [
        "/recharge.v1.RechargeCenter/CreateRechargeOrder",
        "/recharge.v1.RechargeCenter/GetRechargeOrder",
        "/wechatpay.v1.PaymentNotifications/Notify",
        "/card.v1.CardSystem/PreRecharge",
        "/wechatpay.v1.PaymentGateway/CreatePrepay",
        "/grpc.health.v1.Health/Check",
    ],
)
def test_anonymous_loopback_callers_get_the_customer_facing_calls(method: str) -> None:
    assert decide(ANONYMOUS_LOOPBACK, method).allowed


@pytest.mark.parametrize(
    "method",
    [
        "/recharge.v1.RechargeCenter/ListRechargeOrders",
        *(f"/recharge.v1.RechargeOps/{m}" for m in OPS_READS + OPS_WRITES),
        "/card.v1.CardAdmin/OpenCard",
        "/faults.v1.FaultControl/SetFaults",
        "/some.v1.Unknown/Method",
    ],
)
def test_operator_and_admin_calls_need_a_token_even_on_loopback(method: str) -> None:
    decision = decide(ANONYMOUS_LOOPBACK, method)
    assert (decision.allowed, decision.unauthenticated, decision.reason) == (
        False,
        True,
        "AUTHENTICATION_REQUIRED",
    )


def test_off_loopback_an_anonymous_caller_gets_nothing_but_health() -> None:
    remote = Principal()
    assert not decide(remote, "/recharge.v1.RechargeCenter/CreateRechargeOrder").allowed
    assert not decide(remote, "/wechatpay.v1.PaymentNotifications/Notify").allowed
    assert decide(remote, "/grpc.health.v1.Health/Check").allowed
    assert decide(remote, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo").allowed


def test_viewers_read_operators_and_approvers_also_act() -> None:
    for method in OPS_READS:
        for role in (VIEWER, OPERATOR, APPROVER):
            assert decide(person(role), f"/recharge.v1.RechargeOps/{method}").allowed, (method, role)
    for method in OPS_WRITES:
        refused = decide(person(VIEWER), f"/recharge.v1.RechargeOps/{method}")
        assert (refused.allowed, refused.unauthenticated, refused.reason) == (False, False, "ROLE_REQUIRED")
        assert decide(person(OPERATOR), f"/recharge.v1.RechargeOps/{method}").allowed
        assert decide(person(APPROVER), f"/recharge.v1.RechargeOps/{method}").allowed
    assert decide(person(OPERATOR), "/card.v1.CardAdmin/FreezeCard").allowed
    assert not decide(person(VIEWER), "/card.v1.CardAdmin/FreezeCard").allowed


def test_fault_control_takes_the_test_role_and_nothing_else() -> None:
    for role in (VIEWER, OPERATOR, APPROVER):
        assert not decide(person(role), "/faults.v1.FaultControl/SetFaults").allowed
    assert decide(person(TEST), "/faults.v1.FaultControl/SetFaults").allowed
    assert not decide(Principal(service=RECHARGE), "/faults.v1.FaultControl/ClearFaults").allowed


def test_services_call_only_what_their_certificate_is_for() -> None:
    pos, wechat, recharge = Principal(service=POS), Principal(service=WECHAT), Principal(service=RECHARGE)
    assert decide(pos, "/recharge.v1.RechargeCenter/CreateRechargeOrder").allowed
    assert decide(pos, "/recharge.v1.RechargeCenter/ListRechargeOrders").allowed
    assert decide(wechat, "/wechatpay.v1.PaymentNotifications/Notify").allowed
    assert decide(recharge, "/card.v1.CardSystem/ConfirmRecharge").allowed
    assert decide(recharge, "/wechatpay.v1.PaymentGateway/CreateRefund").allowed
    for caller, method in (
        (pos, "/recharge.v1.RechargeOps/ResolveAnomaly"),
        (pos, "/wechatpay.v1.PaymentNotifications/Notify"),
        (pos, "/card.v1.CardSystem/PreRecharge"),
        (wechat, "/recharge.v1.RechargeCenter/CreateRechargeOrder"),
        (wechat, "/recharge.v1.RechargeOps/ListAnomalies"),
        (recharge, "/card.v1.CardAdmin/OpenCard"),
    ):
        decision = decide(caller, method)
        assert (decision.allowed, decision.unauthenticated) == (False, False), (caller, method)


def test_an_exact_method_rule_wins_over_its_service_prefix() -> None:
    assert rule_for("/recharge.v1.RechargeOps/RunSentinel") is POLICY["/recharge.v1.RechargeOps/RunSentinel"]
    assert rule_for("/recharge.v1.RechargeOps/ListAnomalies") is POLICY["/recharge.v1.RechargeOps/"]
    assert rule_for("/nobody.v1.Knows/This") is None


# -- plaintext only on loopback -----------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.9.9", "localhost", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "example.com", "[::]", ""])
def test_other_hosts(host: str) -> None:
    assert not is_loopback(host)


def test_a_plaintext_server_refuses_a_public_address() -> None:
    with pytest.raises(TlsConfigError, match=r"0\.0\.0\.0:50051 without TLS"):
        require_loopback_when_plaintext("0.0.0.0:50051", None)
    require_loopback_when_plaintext("127.0.0.1:0", None)
    with pytest.raises(InvalidSetting) as refused:
        check_listen_setting("0.0.0.0:50051", "")
    assert refused.value.field == "tls_dir"
    check_listen_setting("0.0.0.0:50051", "/etc/rc/tls")


def test_peer_hosts_of_grpc_peer_strings() -> None:
    assert peer_host("ipv4:127.0.0.1:5555") == "127.0.0.1"
    assert peer_host("ipv6:[::1]:5555") == "::1"
    assert peer_host("unix:/tmp/sock") == ""
