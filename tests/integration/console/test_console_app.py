"""The console against a fake recharge center (real policy and token check in front of it): who may
see and do what, CSRF, sessions, throttling, the words on the pages, and "not available" for the
RPCs the recharge center does not serve yet. No browser here: tests/e2e/console has those."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from rc_common.settings import parse_settings
from recharge_service.console.accounts import add_account, new_account, remove_account
from recharge_service.console.backend import CallFailed, Operator
from recharge_service.console.i18n import Translator
from recharge_service.console.pages import ALL
from recharge_service.console.server import build_console
from recharge_service.console.sessions import SessionStore
from recharge_service.console.settings import ConsoleSettings
from recharge_service.console.web import Console, failure_words, make_app
from recharge_service.entrypoints.ops_reconcile import ITEM_FIELDS
from tests.auth import write_key_file
from tests.integration.console.fake_ops import BIG, CARD_NO, REVIEW, FullOps, TodaysOps, serving

PASSWORD = "a long enough password"
PEOPLE = {"olga": ["operator"], "vera": ["viewer"], "anna": ["approver"], "otto": ["operator", "approver"]}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Visitor:
    """A browser of sorts: keeps the console's cookies, sends Origin like a browser does."""

    client: TestClient[Any, Any]
    cookies: dict[str, str] = field(default_factory=dict)
    last: str = ""

    @property
    def origin(self) -> str:
        return str(self.client.make_url("/")).rstrip("/")

    def _keep(self, response: aiohttp.ClientResponse) -> None:
        jar: SimpleCookie = SimpleCookie()
        for header in response.headers.getall("Set-Cookie", []):
            jar.load(header)
        for name, morsel in jar.items():
            if morsel["max-age"] == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value

    def _cookie_header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    async def get(self, path: str) -> tuple[int, str, aiohttp.ClientResponse]:
        response = await self.client.get(path, headers=self._cookie_header(), allow_redirects=False)
        self._keep(response)
        self.last = await response.text()
        return response.status, self.last, response

    async def post(
        self, path: str, data: dict[str, str], *, origin: str | None = "", token: bool = True
    ) -> tuple[int, str, aiohttp.ClientResponse]:
        form = dict(data)
        if token:
            form.setdefault("csrf_token", self.csrf())
        headers = self._cookie_header()
        if origin is not None:
            headers["Origin"] = origin or self.origin
        response = await self.client.post(path, data=form, headers=headers, allow_redirects=False)
        self._keep(response)
        self.last = await response.text()
        return response.status, self.last, response

    def csrf(self) -> str:
        found = CSRF.search(self.last)
        assert found, "no form on the last page"
        return found.group(1)

    async def login(self, name: str, password: str = PASSWORD) -> int:
        await self.get("/login")
        status, _, _ = await self.post(
            "/login", {"name": name, "password": password, "next": "/anomalies"}
        )
        return status

    async def follow(self, response: aiohttp.ClientResponse) -> str:
        return (await self.get(response.headers["Location"]))[1]


@dataclass
class World:
    fake: TodaysOps
    console: Console
    client: TestClient[Any, Any]

    def visitor(self) -> Visitor:
        return Visitor(self.client)

    async def logged_in(self, name: str) -> Visitor:
        visitor = self.visitor()
        assert await visitor.login(name) == 303
        return visitor


async def world_of(fake: TodaysOps, tmp_path: Path, *extra: str) -> AsyncIterator[World]:
    accounts = tmp_path / "accounts.json"
    for name, roles in PEOPLE.items():
        add_account(accounts, new_account(name, roles, PASSWORD))
    async with serving(fake) as server:
        argv = ["--target", server.address, "--auth-key-file", write_key_file(tmp_path),
                "--accounts-file", str(accounts), "--login-max-failures", "3", *extra]  # fmt: skip
        settings = parse_settings(ConsoleSettings, argv, prog="console", description="")
        console = build_console(settings)
        async with TestClient(
            TestServer(make_app(console, ALL)), cookie_jar=aiohttp.DummyCookieJar()
        ) as client:
            yield World(fake, console, client)
        await console.backend.close()


@pytest.fixture
async def today(tmp_path: Path) -> AsyncIterator[World]:
    async for world in world_of(TodaysOps(), tmp_path):
        yield world


@pytest.fixture
async def full(tmp_path: Path) -> AsyncIterator[World]:
    async for world in world_of(FullOps(), tmp_path):
        yield world


def forms(page: str) -> list[str]:
    return re.findall(r'<form method="post" action="([^"]+)"', page)


async def test_login_starts_a_strict_http_only_secure_session(today: World) -> None:
    visitor = today.visitor()
    status, page, _ = await visitor.get("/anomalies")
    assert status == 303
    await visitor.get("/login?next=/anomalies")
    status, _, response = await visitor.post(
        "/login", {"name": "olga", "password": PASSWORD, "next": "/health"}
    )
    assert status == 303 and response.headers["Location"] == "/health"
    header = next(h for h in response.headers.getall("Set-Cookie") if h.startswith("__Host-rc_session="))
    flags = {part.strip().lower() for part in header.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    assert not any(f.startswith("domain") for f in flags)
    session_id = visitor.cookies["__Host-rc_session"]
    assert len(session_id) == 43  # 256 bits, base64url
    status, page, _ = await visitor.get("/anomalies")
    assert status == 200 and "Signed in as olga (operator)" in page


async def test_a_wrong_password_or_name_is_refused_the_same_way(today: World) -> None:
    for name, password in (("olga", "wrong password!"), ("nobody", PASSWORD)):
        visitor = today.visitor()
        assert await visitor.login(name, password) == 401
        assert "Wrong name or password." in visitor.last
        assert "__Host-rc_session" not in visitor.cookies


async def test_failed_logins_make_the_pair_wait_even_for_the_right_password(today: World) -> None:
    visitor = today.visitor()
    for _ in range(3):
        assert await visitor.login("olga", "wrong password!") == 401
    assert await visitor.login("olga", PASSWORD) == 429
    assert "try again in 60 s" in visitor.last
    assert await today.visitor().login("anna") == 303  # another account is not held up


async def test_the_login_form_is_csrf_protected_too(today: World) -> None:
    visitor = today.visitor()
    await visitor.get("/login")
    status, page, _ = await visitor.post(
        "/login", {"name": "olga", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert status == 403 and "nothing was done" in page
    await visitor.get("/login")
    status, _, _ = await visitor.post(
        "/login", {"name": "olga", "password": PASSWORD}, origin="https://evil.example"
    )
    assert status == 403
    assert "__Host-rc_session" not in visitor.cookies


async def test_every_call_names_the_logged_in_operator_and_their_roles(today: World) -> None:
    olga = await today.logged_in("olga")
    await olga.get("/anomalies")
    await olga.get(f"/orders/{REVIEW}")
    calls = today.fake.received
    assert calls and {(subject, roles) for _, _, subject, roles in calls} == {
        ("olga", frozenset({"operator"}))
    }


async def test_a_post_without_the_csrf_token_or_from_another_origin_does_nothing(today: World) -> None:
    olga = await today.logged_in("olga")
    await olga.get(f"/orders/{REVIEW}")
    resolve = {"action": "RETRY_NOW", "reason": "ticket 7", "merchant": "bakery"}
    status, page, _ = await olga.post(f"/orders/{REVIEW}/resolve", resolve, token=False)
    assert status == 403 and "nothing was done" in page
    await olga.get(f"/orders/{REVIEW}")
    status, _, _ = await olga.post(f"/orders/{REVIEW}/resolve", resolve, origin="https://evil.example")
    assert status == 403
    await olga.get(f"/orders/{REVIEW}")
    status, _, _ = await olga.post(f"/orders/{REVIEW}/resolve", {**resolve, "csrf_token": "x" * 43})
    assert status == 403
    assert today.fake.of("ResolveAnomaly") == []
    await olga.get(f"/orders/{REVIEW}")
    status, _, response = await olga.post(f"/orders/{REVIEW}/resolve", resolve)
    assert status == 303
    ((request, subject, _),) = today.fake.of("ResolveAnomaly")
    assert (request.order_no, request.reason, request.merchant_id, subject) == (
        REVIEW,
        "ticket 7",
        "bakery",
        "olga",
    )
    assert not request.operator  # the operator is the token's subject, never a typed-in name
    assert "RETRY: looked again" in await olga.follow(response)


async def test_a_viewer_sees_no_action_forms_and_their_posts_are_refused(today: World) -> None:
    vera = await today.logged_in("vera")
    _, page, _ = await vera.get(f"/orders/{REVIEW}")
    assert forms(page) == ["/logout"] and "Your role may look, not act." in page
    _, page, _ = await vera.get("/reconciliation?date=2026-11-29")
    assert forms(page) == ["/logout"]
    token = vera.csrf()  # the logout form's: a viewer has a session and its token too
    status, page, _ = await vera.post(
        f"/orders/{REVIEW}/resolve", {"action": "REFUND", "reason": "x", "csrf_token": token}
    )
    assert status == 403 and "Your role may not do this" in page
    status, _, _ = await vera.post(
        "/approvals/A1/decide", {"decision": "approve", "reason": "x", "csrf_token": token}
    )
    assert status == 403
    status, _, _ = await vera.post("/reconciliation/run", {"date": "2026-11-29", "csrf_token": token})
    assert status == 403
    assert not today.fake.of("ResolveAnomaly") and not today.fake.of("DecideApproval")


async def test_the_recharge_center_refuses_a_viewer_too_and_its_refusal_reads_as_words(today: World) -> None:
    from protos.recharge.v1 import recharge_pb2 as pb

    calls = today.console.backend.calls(Operator("vera", frozenset({"viewer"})))
    with pytest.raises(CallFailed) as refused:
        await calls.act(
            "ResolveAnomaly",
            pb.ResolveAnomalyRequest(order_no=REVIEW, action=pb.RESOLVE_ACTION_REFUND, reason="x"),
        )
    assert (refused.value.code, refused.value.reason) == ("PERMISSION_DENIED", "ROLE_REQUIRED")
    words = failure_words(Translator("en"), refused.value)
    assert "your role may not do this" in words and "[ROLE_REQUIRED]" in words
    assert "Error" not in words and "Exception" not in words
    assert "您的角色不能执行此操作" in failure_words(Translator("zh"), refused.value)


async def test_a_refusal_is_shown_in_words_with_its_reason_code(today: World) -> None:
    olga = await today.logged_in("olga")
    await olga.get(f"/orders/{REVIEW}")
    _, _, response = await olga.post(
        f"/orders/{REVIEW}/resolve", {"action": "CONFIRM_CREDIT", "reason": "card back"}
    )
    page = await olga.follow(response)
    assert "Confirm credit refused: the card system does not say SUCCEEDED" in page
    assert "[CARD_NOT_CREDITED]" in page and "RpcError" not in page


async def test_a_reason_is_required(today: World) -> None:
    olga = await today.logged_in("olga")
    await olga.get(f"/orders/{REVIEW}")
    _, _, response = await olga.post(f"/orders/{REVIEW}/resolve", {"action": "RETRY_NOW", "reason": "   "})
    assert "A reason is required" in await olga.follow(response)
    assert today.fake.of("ResolveAnomaly") == []


async def test_a_refund_above_the_threshold_reads_waiting_for_a_second_approver(today: World) -> None:
    olga = await today.logged_in("olga")
    await olga.get(f"/orders/{BIG}")
    _, _, response = await olga.post(
        f"/orders/{BIG}/resolve", {"action": "REFUND", "reason": "customer asked"}
    )
    assert "Refund: waiting for a second approver (approval A1)." in await olga.follow(response)


async def test_rpcs_not_served_yet_read_not_available_and_the_rest_still_works(today: World) -> None:
    olga = await today.logged_in("olga")
    status, page, _ = await olga.get(f"/orders/{REVIEW}")
    assert status == 200
    assert "Not available: this recharge center does not offer the live views" in page
    assert "¥1,234.56" in page and "needs review" in page  # the order, by GetRechargeOrder
    assert "/card.v1.CardSystem/ConfirmRecharge" in page and "&lt;frozen&gt;" in page  # escaped
    assert forms(page).count(f"/orders/{REVIEW}/resolve") == 3
    for path, words in (("/health", "its health figures"), ("/approvals", "approvals")):
        status, page, _ = await olga.get(path)
        assert status == 200 and f"does not offer {words} yet" in page
    status, _, response = await olga.get(f"/orders?q={REVIEW}")
    assert status == 303 and response.headers["Location"] == f"/orders/{REVIEW}"
    status, page, _ = await olga.get(f"/orders?q={CARD_NO}")
    assert (
        status == 200
        and "search by card number or transaction id" in page
        and f"No order is {CARD_NO}" in page
    )
    status, _, _ = await olga.get("/orders/R404")
    assert status == 404


async def test_inspect_shows_what_the_other_systems_say_and_why_an_action_is_not_allowed(full: World) -> None:
    olga = await full.logged_in("olga")
    _, page, _ = await olga.get(f"/orders/{REVIEW}")
    assert "voided: can never be credited" in page and "no answer in time" in page
    assert "refund abnormal" in page
    assert "Not allowed now: the card system does not say SUCCEEDED" in page
    assert re.search(r'value="CONFIRM_CREDIT">.*?<button type="submit" disabled>', page, re.S)
    assert "Allowed now." in page and "looks again" in page
    assert 'class="age over-hold"' in page  # 2h05m against a 1h hold


async def test_search_by_card_lists_its_orders_and_one_hit_opens_the_order(full: World) -> None:
    olga = await full.logged_in("olga")
    _, page, _ = await olga.get(f"/orders?q={CARD_NO}")
    assert "3 orders match" in page and page.count('class="order-link"') == 3
    status, _, response = await olga.get(f"/orders?q={REVIEW}")
    assert status == 303 and response.headers["Location"] == f"/orders/{REVIEW}?merchant=bakery"


async def test_only_another_approver_gets_the_decision_form_and_the_decision_is_theirs(full: World) -> None:
    olga, anna = await full.logged_in("olga"), await full.logged_in("anna")
    _, page, _ = await olga.get("/approvals")
    assert "Only an approver decides." in page and "/approvals/A1/decide" not in forms(page)
    otto = await full.logged_in("otto")
    _, page, _ = await otto.get("/approvals")
    assert "/approvals/A1/decide" in forms(page)  # otto did not ask: olga did
    _, page, _ = await anna.get("/approvals")
    assert "/approvals/A1/decide" in forms(page)
    _, _, response = await anna.post(
        "/approvals/A1/decide", {"decision": "approve", "reason": "checked the ticket"}
    )
    assert response.headers["Location"] == f"/orders/{BIG}?merchant=bakery"
    assert "Approval A1: approved. voided; refund R-R1: REFUNDING" in await anna.follow(response)
    ((request, subject, roles),) = full.fake.of("DecideApproval")
    assert (request.approve, request.reason, subject, roles) == (
        True,
        "checked the ticket",
        "anna",
        {"approver"},
    )


async def test_the_health_page_shows_the_figures(full: World) -> None:
    olga = await full.logged_in("olga")
    _, page, _ = await olga.get("/health")
    assert '<code id="node">r1</code>' in page and "serving" in page and "no answer" in page
    assert 'id="pending-approvals"><a href="/approvals">1</a>' in page


async def test_the_csv_export_has_the_ops_clis_columns(today: World) -> None:
    olga = await today.logged_in("olga")
    status, text, response = await olga.get("/reconciliation.csv?date=2026-11-29")
    assert status == 200 and response.content_type == "text/csv"
    assert 'filename="reconciliation-2026-11-29.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == ITEM_FIELDS
    assert rows[1][2:4] == [REVIEW, "PAID_NOT_SETTLED"] and rows[1][-1] == "paid, not settled, with a comma"
    _, page, _ = await olga.get("/reconciliation?date=2026-11-29")
    assert (
        f'href="/orders/{REVIEW}?merchant=bakery"' in page and "paid, neither credited nor refunded" in page
    )


async def test_a_removed_operator_is_logged_out_at_their_next_request(today: World, tmp_path: Path) -> None:
    olga = await today.logged_in("olga")
    assert (await olga.get("/anomalies"))[0] == 200
    remove_account(tmp_path / "accounts.json", "olga")
    status, _, response = await olga.get("/anomalies")
    assert status == 303 and response.headers["Location"].startswith("/login")


async def test_an_idle_session_ends(today: World) -> None:
    now = [0.0]
    today.console.sessions = SessionStore(idle=60, lifetime=600, clock=lambda: now[0])
    olga = await today.logged_in("olga")
    now[0] = 59
    assert (await olga.get("/anomalies"))[0] == 200
    now[0] = 59 + 60
    assert (await olga.get("/anomalies"))[0] == 303


async def test_logout_ends_the_session(today: World) -> None:
    olga = await today.logged_in("olga")
    session_id = olga.cookies["__Host-rc_session"]
    await olga.get("/anomalies")
    status, _, response = await olga.post("/logout", {})
    assert status == 303 and response.headers["Location"] == "/login?bye=1"
    assert today.console.sessions.get(session_id) is None


async def test_pages_speak_chinese_on_request_and_remember_it(today: World) -> None:
    olga = await today.logged_in("olga")
    _, page, _ = await olga.get("/anomalies?lang=zh")
    assert "待处理的异常订单" in page and "待人工处理" in page and "¥1,234.56" in page
    assert olga.cookies["rc_lang"] == "zh"
    _, page, _ = await olga.get(f"/orders/{REVIEW}")
    assert "时间线" in page and "调用其他系统" in page and "+08:00" in page


async def test_anomalies_filter_sort_and_page_by_the_query_string(today: World) -> None:
    olga = await today.logged_in("olga")
    _, page, _ = await olga.get("/anomalies?sort=amount&dir=asc")
    order = re.findall(r'<tr data-order="([^"]+)"', page)
    assert len(order) == 3 and order[0].endswith("2") and order[-1] == REVIEW
    _, page, _ = await olga.get("/anomalies?status=MANUAL_REVIEW&min_age=60&merchant=bakery")
    ((request, _, _),) = today.fake.of("ListAnomalies")[-1:]
    assert (list(request.statuses), request.min_age_seconds, request.merchant_id) == ([10], 3600, "bakery")
    assert re.findall(r'<tr data-order="([^"]+)"', page) == [REVIEW]


async def test_pages_carry_strict_security_headers(today: World) -> None:
    olga = await today.logged_in("olga")
    _, _, response = await olga.get("/anomalies")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"


def test_plaintext_is_refused_on_a_non_loopback_listen_and_the_key_is_required(tmp_path: Path) -> None:
    key = write_key_file(tmp_path)
    with pytest.raises(SystemExit):
        parse_settings(
            ConsoleSettings, ["--listen", "0.0.0.0:8080", "--auth-key-file", key], prog="c", description=""
        )
    with pytest.raises(SystemExit):
        parse_settings(ConsoleSettings, [], prog="c", description="")
    fine = parse_settings(ConsoleSettings, ["--auth-key-file", key], prog="c", description="")
    assert fine.listen == "127.0.0.1:8080"


async def test_with_a_tls_directory_the_console_serves_https_only(tmp_path: Path) -> None:
    import ssl

    from recharge_service.console.server import ConsoleServer
    from scripts.certs import make_certs

    make_certs(tmp_path / "tls", ["ops"])
    argv = ["--listen", "127.0.0.1:0", "--tls-dir", str(tmp_path / "tls" / "ops"),
            "--auth-key-file", write_key_file(tmp_path),
            "--accounts-file", str(tmp_path / "none.json")]  # fmt: skip
    server = ConsoleServer(build_console(parse_settings(ConsoleSettings, argv, prog="c", description="")))
    await server.start()
    try:
        assert server.url.startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ops" / "ca.crt"))
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "login", ssl=trust) as answer:
                assert answer.status == 200
                assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
                assert "Secure" in answer.headers["Set-Cookie"]
            with pytest.raises(aiohttp.ClientError):  # no plain HTTP on the same port
                async with session.get(server.url.replace("https", "http") + "login"):
                    pass
    finally:
        await server.stop()
