"""The operators' console in headless Chromium against a running stack: log in, find an order a
real fault sent to MANUAL_REVIEW (a refund WeChat answered ABNORMAL), read its timeline, see
confirm-credit refused while the card system does not say SUCCEEDED, CSRF-less and viewer POSTs
refused with nothing done, reconciliation with its CSV, the language switch — and, with the
RechargeOps of issue 17's server side, a refund above the four-eyes threshold that waits for a
second approver, the live views of the card system and WeChat, search by card number, health.

Screenshots of the main pages are saved (see conftest); a test names what it shows.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from rc_common.business_day import business_date
from rc_common.clock import utc_now
from recharge_service.entrypoints.ops_reconcile import ITEM_FIELDS
from scripts.stack import ServiceProcess, Stack
from tests.e2e.console.conftest import PASSWORD
from tests.e2e.merchants import PARTNER
from tests.e2e.recharge_flow.conftest import Clients, connected

S = recharge_pb2
K = faults_pb2
#: Above the recharge center's default four-eyes threshold (¥500): a refund needs a second person.
PAY_FEN = 100_000
WAIT_S = 30


@dataclass(frozen=True)
class Made:
    order_no: str
    card_no: str


def rule(method: str, kind: int) -> faults_pb2.FaultRule:
    return faults_pb2.FaultRule(method=method, kind=kind, times=1 if "Refund" in method else 0)  # type: ignore[arg-type]


async def _settled(clients: Clients, order_no: str, *statuses: int) -> recharge_pb2.RechargeOrder:
    return await clients.wait_for(order_no, lambda o: o.status in statuses, WAIT_S, what=str(statuses))


async def _abnormal(stack: Stack) -> Made:
    """Paid, the card frozen meanwhile (the confirm is refused), voided, refunded — and WeChat
    answers the refund ABNORMAL: MANUAL_REVIEW."""
    async with connected(Clients, stack, PARTNER, {}) as clients:
        card_no = await clients.new_card()
        await clients.wechat_faults.SetFaults(
            K.FaultPlan(
                seed=1,
                rules=[rule("/wechatpay.v1.PaymentGateway/CreateRefund", K.FAULT_KIND_REFUND_ABNORMAL)],
            ),
            timeout=5,
        )
        order = await clients.create(card_no, PAY_FEN)
        await clients.admin.FreezeCard(card_pb2.FreezeCardRequest(card_no=card_no), timeout=5)
        await clients.pay(order.order_no)
        await _settled(clients, order.order_no, S.ORDER_STATUS_MANUAL_REVIEW)
    return Made(order.order_no, card_no)


async def _credit_unknown(stack: Stack) -> Made:
    """Paid, and the card system never answers the confirm: CREDIT_UNKNOWN (the pre-recharge stays
    RECHARGING; the long hold keeps the sentinel off it)."""
    async with connected(Clients, stack, PARTNER, {}) as clients:
        card_no = await clients.new_card()
        await clients.card_faults.SetFaults(
            K.FaultPlan(
                seed=1, rules=[rule("/card.v1.CardSystem/ConfirmRecharge", K.FAULT_KIND_UNAVAILABLE)]
            ),
            timeout=5,
        )
        order = await clients.create(card_no, PAY_FEN)
        await clients.pay(order.order_no)
        await _settled(clients, order.order_no, S.ORDER_STATUS_CREDIT_UNKNOWN)
    return Made(order.order_no, card_no)


@pytest.fixture(scope="module")
def abnormal(console_stack: Stack) -> Made:
    return asyncio.run(_abnormal(console_stack))


@pytest.fixture
async def clients(console_stack: Stack) -> AsyncIterator[Clients]:
    async with connected(Clients, console_stack, PARTNER, {}) as built:
        yield built


def _gone(old: WebElement) -> Any:
    """The wait's condition: the page ``old`` belonged to was replaced. Chromedriver answers a look
    at a node of a page being replaced either "stale element" or, racing the navigation, "Node
    with given id does not belong to the document": both mean it is gone."""

    def check(_driver: WebDriver) -> bool:
        try:
            old.is_enabled()
        except WebDriverException:  # StaleElementReferenceException is one
            return True
        return False

    return check


class Page:
    """The console in the module's browser, as one operator at a time."""

    def __init__(self, driver: WebDriver, base: str, shots: Path) -> None:
        self.driver = driver
        self.base = base
        self.shots = shots

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str = "body") -> str:
        return self.find(css).text

    def submitting(self, button: WebElement) -> None:
        """Click a form's button and wait for the page the server answers with."""
        old = self.find("html")
        button.click()
        WebDriverWait(self.driver, WAIT_S).until(_gone(old))
        WebDriverWait(self.driver, WAIT_S).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )

    def login(self, name: str, password: str = PASSWORD) -> None:
        self.driver.delete_all_cookies()
        self.open("/login")
        self.find("#name").send_keys(name)
        self.find("#password").send_keys(password)
        self.submitting(self.find("#login"))
        assert "/login" not in self.driver.current_url, self.text()

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1400, max(1000, min(int(height), 4000)))
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1400, 1000)
        return path

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        """A POST from this page's own script (same origin, the session cookie sent): status, body."""
        script = """
            const [url, fields, done] = arguments;
            fetch(url, {method: "POST", body: new URLSearchParams(fields), credentials: "same-origin",
                        redirect: "manual"})
              .then(async r => done([r.status, r.type === "opaqueredirect" ? "" : await r.text()]))
              .catch(e => done([-1, String(e)]));
        """
        status, body = self.driver.execute_async_script(script, path, fields)
        return int(status), str(body)

    def fetch(self, url: str) -> tuple[int, str]:
        """A GET from this page's own script (the session cookie sent): status, body."""
        script = """
            const [url, done] = arguments;
            fetch(url, {credentials: "same-origin"}).then(async r => done([r.status, await r.text()]))
              .catch(e => done([-1, String(e)]));
        """
        status, body = self.driver.execute_async_script(script, url)
        return int(status), str(body)

    def own_csrf_token(self) -> str:
        return str(
            self.driver.execute_script("return document.querySelector('input[name=csrf_token]').value")
        )

    def timeline(self) -> list[dict[str, str]]:
        return [
            {
                "kind": str(li.get_attribute("data-kind")),
                "method": str(li.get_attribute("data-method")),
                "outcome": str(li.get_attribute("data-outcome")),
                "text": li.text,
            }
            for li in self.all("#timeline li.event")
        ]


@pytest.fixture
def page(driver: WebDriver, console: ServiceProcess, screenshots: Path) -> Iterator[Page]:
    built = Page(driver, f"http://{console.address}", screenshots)
    yield built
    driver.delete_all_cookies()


async def operator_actions(clients: Clients, order_no: str) -> list[recharge_pb2.TimelineEvent]:
    return [e for e in await clients.timeline(order_no) if e.kind == "operator_action"]


def test_an_operator_logs_in_and_the_browser_keeps_a_secure_http_only_strict_session_cookie(
    page: Page,
) -> None:
    page.open("/anomalies")
    assert "/login" in page.driver.current_url  # no session: the login page first
    page.shot("01-login")
    page.login("olga")
    cookie = page.driver.get_cookie("__Host-rc_session")
    assert cookie is not None
    # Chromium keeps a Secure cookie on http://127.0.0.1 (a trustworthy origin): the session holds.
    assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Strict")
    assert page.driver.execute_script("return document.cookie") == ""  # HttpOnly: no script reads it
    assert "Signed in as olga (operator)" in page.text("#signed-in")
    page.open("/health")
    assert "/login" not in page.driver.current_url


def test_the_secure_session_cookie_holds_on_http_localhost_too(page: Page) -> None:
    page.base = page.base.replace("127.0.0.1", "localhost")
    page.login("olga")
    cookie = page.driver.get_cookie("__Host-rc_session")
    assert cookie is not None and cookie["secure"] and cookie["domain"] == "localhost"
    page.open("/approvals")
    assert "/login" not in page.driver.current_url and "olga" in page.text("#signed-in")


def test_a_wrong_password_is_refused(page: Page) -> None:
    page.open("/login")
    page.find("#name").send_keys("olga")
    page.find("#password").send_keys("not the password")
    page.submitting(page.find("#login"))
    assert "Wrong name or password." in page.text("#login-error")
    assert page.driver.get_cookie("__Host-rc_session") is None


def test_a_manual_review_order_from_an_abnormal_refund_is_found_and_its_timeline_read(
    page: Page, abnormal: Made
) -> None:
    page.login("olga")
    page.open("/anomalies")
    Select(page.find("#status")).select_by_value("MANUAL_REVIEW")
    page.submitting(page.find("#anomaly-filters button[type=submit]"))
    row = page.find(f'tr[data-order="{abnormal.order_no}"]')
    assert "needs review" in row.text and "¥1,000.00" in row.text and "ABNORMAL" in row.text
    page.shot("02-anomalies")
    page.submitting(row.find_element(By.CSS_SELECTOR, "a.order-link"))
    assert abnormal.order_no in page.text("#order-title")
    assert page.find("#order-facts [data-status]").get_attribute("data-status") == "MANUAL_REVIEW"
    assert page.text("#card-no") == abnormal.card_no and page.text("#pay-amount") == "¥1,000.00"
    events = page.timeline()
    methods = [(e["method"], e["outcome"]) for e in events]
    assert ("/card.v1.CardSystem/ConfirmRecharge", "refused") in methods
    assert ("/card.v1.CardSystem/VoidRecharge", "done") in methods
    assert ("/wechatpay.v1.PaymentGateway/CreateRefund", "done") in methods
    assert any(e["kind"] == "notification" and "REFUND.ABNORMAL" in e["text"] for e in events)
    last = [e for e in events if e["kind"] == "transition"][-1]
    assert "refunding" in last["text"] and "needs review" in last["text"]
    assert all(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \+08:00", e["text"]) for e in events)
    page.shot("03-order")


async def test_confirm_credit_is_refused_while_the_card_system_does_not_say_succeeded(
    page: Page, abnormal: Made, clients: Clients
) -> None:
    before = len(await operator_actions(clients, abnormal.order_no))
    page.login("olga")
    page.open(f"/orders/{abnormal.order_no}")
    action = page.find("#action-CONFIRM_CREDIT")
    action.find_element(By.CSS_SELECTOR, "input[name=reason]").send_keys(
        "customer says the card shows nothing"
    )
    button = action.find_element(By.CSS_SELECTOR, "button[type=submit]")
    if not button.is_enabled():  # the preview already says why not; the recharge center decides anyway
        assert "does not say SUCCEEDED" in action.text
        page.driver.execute_script("arguments[0].disabled = false", button)
    page.submitting(button)
    refusal = page.text(".flash-error")
    assert "Confirm credit refused: the card system does not say SUCCEEDED" in refusal
    assert re.search(r"\[CARD_NOT_(CREDITED|SUCCEEDED)\]", refusal)
    assert page.find("#order-facts [data-status]").get_attribute("data-status") == "MANUAL_REVIEW"
    actions = await operator_actions(clients, abnormal.order_no)
    assert [(e.method, e.outcome, e.actor) for e in actions[before:]] == [
        ("CONFIRM_CREDIT", "requested", "olga"),
        ("CONFIRM_CREDIT", "refused", "olga"),
    ]
    assert any(e["kind"] == "operator_action" and "olga" in e["text"] for e in page.timeline())
    assert await clients.balance(abnormal.card_no) == 0  # nothing credited


async def test_a_post_without_the_csrf_token_is_refused_and_nothing_is_done(
    page: Page, abnormal: Made, clients: Clients
) -> None:
    before = await operator_actions(clients, abnormal.order_no)
    page.login("olga")
    page.open(f"/orders/{abnormal.order_no}")
    fields = {"action": "RETRY_NOW", "reason": "forged", "merchant": PARTNER.merchant_id}
    status, body = page.post(f"/orders/{abnormal.order_no}/resolve", fields)
    assert status == 403 and "nothing was done" in body
    status, _ = page.post(f"/orders/{abnormal.order_no}/resolve", {**fields, "csrf_token": "x" * 43})
    assert status == 403
    assert await operator_actions(clients, abnormal.order_no) == before


async def test_a_viewer_sees_the_pages_but_no_action_and_their_posts_are_refused(
    page: Page, abnormal: Made, clients: Clients
) -> None:
    before = await operator_actions(clients, abnormal.order_no)
    page.login("vera")
    page.open(f"/orders/{abnormal.order_no}")
    assert abnormal.order_no in page.text("#order-title") and page.timeline()
    assert page.all("form.resolve-form") == []
    assert "Your role may look, not act." in page.text("#viewer-note")
    token = page.own_csrf_token()  # the viewer's own session token (the logout form's)
    fields = {
        "action": "REFUND",
        "reason": "viewer tries",
        "merchant": PARTNER.merchant_id,
        "csrf_token": token,
    }
    status, body = page.post(f"/orders/{abnormal.order_no}/resolve", fields)
    assert status == 403 and "Your role may not do this" in body
    page.open("/reconciliation")
    assert page.all("#recon-run") == []
    assert await operator_actions(clients, abnormal.order_no) == before


async def test_a_refund_above_the_threshold_waits_for_a_second_approver_who_then_runs_it(
    page: Page, console_stack: Stack, clients: Clients
) -> None:
    # Needs RechargeOps of issue 17's server side (four eyes: APPROVAL_REQUIRED, DecideApproval).
    made = await _credit_unknown(console_stack)
    page.login("olga")
    page.open(f"/orders/{made.order_no}?merchant={PARTNER.merchant_id}")
    action = page.find("#action-REFUND")
    action.find_element(By.CSS_SELECTOR, "input[name=reason]").send_keys("customer asked for the money back")
    page.submitting(action.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    waiting = page.text(".flash-wait")
    assert "Refund: waiting for a second approver" in waiting
    assert "olga" in page.text("#pending-approval")
    with pytest.raises(grpc.aio.AioRpcError) as none:  # nothing refunded, nothing voided yet
        await clients.refund(f"{made.order_no}-R1")
    assert none.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await clients.recharge(made.order_no)).status == card_pb2.PRE_RECHARGE_STATUS_RECHARGING
    page.open("/approvals")
    assert "Only an approver decides." in page.find(f'tr[data-order="{made.order_no}"]').text

    page.login("anna")
    page.open("/approvals")
    row = page.find(f'tr[data-order="{made.order_no}"]')
    assert "olga" in row.text and "¥1,000.00" in row.text
    page.shot("05-approvals")
    row.find_element(By.CSS_SELECTOR, "input[name=reason]").send_keys("ticket checked: refund")
    page.submitting(row.find_element(By.CSS_SELECTOR, "button.approve"))
    assert made.order_no in page.text("#order-title")
    assert "approved" in page.text(".flash-ok")
    ended = await _settled(clients, made.order_no, S.ORDER_STATUS_REFUNDED)
    refund = await clients.refund(f"{made.order_no}-R1")
    assert refund.status == wechatpay_pb2.REFUND_STATUS_SUCCESS and refund.refund_fen == PAY_FEN
    assert (await clients.recharge(made.order_no)).status == card_pb2.PRE_RECHARGE_STATUS_VOIDED
    assert ended.out_refund_no == f"{made.order_no}-R1"
    assert "anna" in {e.actor for e in await operator_actions(clients, made.order_no)}


def test_the_order_page_shows_what_the_card_system_and_wechat_say_now(page: Page, abnormal: Made) -> None:
    # Needs RechargeOps.InspectOrder and FindOrders (issue 17's server side).
    page.login("olga")
    page.open("/orders")
    page.find("#q").send_keys(abnormal.card_no)
    page.submitting(page.find("#search"))
    assert abnormal.order_no in page.text("#order-title")  # one hit: the order itself
    assert "voided" in page.text("#view-card")
    assert "refund abnormal" in page.text("#view-refund")
    assert page.all("#views-unavailable") == []
    confirm = page.find("#action-CONFIRM_CREDIT")
    assert "Not allowed now" in confirm.text
    page.open(f"/orders/{abnormal.order_no}?lang=zh")
    assert "卡系统：预充值" in page.text("#views") and "待人工处理" in page.text("#order-title")
    page.shot("04-order-zh")
    page.open("/anomalies?lang=en")


def test_reconciliation_of_today_runs_from_the_page_and_exports_csv(page: Page, abnormal: Made) -> None:
    today = business_date(utc_now()).isoformat()
    page.login("olga")
    page.open(f"/reconciliation?date={today}")
    page.submitting(page.find("#recon-run button"))
    assert f"Reconciled {today}" in page.text(".flash-ok")
    assert page.find("#recon-runs").text
    items = page.all("#recon-items a.order-link")
    if items:  # each difference names its order and opens it
        assert all("/orders/" in str(a.get_attribute("href")) for a in items)
    page.shot("06-reconciliation")
    status, body = page.fetch(page.find("#csv").get_attribute("href") or "")
    assert status == 200
    assert body.splitlines()[0] == ",".join(ITEM_FIELDS)


def test_the_health_page_shows_the_systems_and_the_figures(page: Page) -> None:
    # Needs RechargeOps.GetOpsHealth (issue 17's server side).
    page.login("olga")
    page.open("/health")
    assert page.text("#node") == "e2e-console"
    systems = {row.get_attribute("data-system"): row.text for row in page.all("#systems tr[data-system]")}
    assert "serving" in systems["card"] and "serving" in systems["wechat"]
    assert "needs review" in page.text("#orders-by-status")
    page.shot("07-health")


def test_the_language_switch_turns_every_label_chinese(page: Page) -> None:
    page.login("olga")
    page.open("/anomalies")
    page.submitting(page.find("#lang-zh"))
    assert page.text("h1") == "待处理的异常订单"
    assert "当前用户：olga（操作员）" in page.text("#signed-in")
    page.shot("08-anomalies-zh")
    page.open("/health")  # the cookie keeps the choice
    assert page.text("h1") == "运行状况"
    page.submitting(page.find("#lang-en"))
    assert page.text("h1") == "Health"
