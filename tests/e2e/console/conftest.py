"""The operators' console in a real browser: one stack, one console process and one headless
Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by Selenium) for the module.

The browser is found at /usr/bin (``make browser`` installs it as root); without it every test here
skips with that reason. Screenshots go to ``$RC_SCREENSHOTS`` when set, else the test run's temp dir.

Operators: olga (operator), vera (viewer), anna (approver). Orders are made with real faults through
the simulators' FaultControl (the stack's token), never by writing a database.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from recharge_service.console.accounts import add_account, new_account
from scripts.console import console_process
from scripts.merchants import direct_merchants_flag
from scripts.stack import ServiceProcess, Stack, build_stack, start_stack
from tests.e2e.merchants import configured, open_all

PASSWORD = "console browser test password"
OPERATORS = {"olga": ("operator",), "vera": ("viewer",), "anna": ("approver",)}
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromedriver")
#: Seconds the sentinel waits before it touches an order: long, so the orders a test leaves
#: undecided stay as the test left them while an operator acts on them.
HOLD_S = 600


@pytest.fixture(scope="module")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("console")
    merchants = configured()
    stack = build_stack(
        workdir,
        recharge_args=[
            *("--hold", str(HOLD_S), "--node-id", "e2e-console"),
            *("--confirm-attempts", "2", "--confirm-backoff", "0.05", "--confirm-deadline", "0.5"),
            *("--remote-backoff", "0.05", "--remote-deadline", "2"),
            *("--outbox-interval", "0.2", "--outbox-backoff", "0.1", "--outbox-backoff-max", "0.5"),
        ],
        wechat_args=[
            *("--notify-schedule", "0.2,0.3,0.5,1", "--refund-delay", "0.3", "--idle-poll", "0.2"),
            *direct_merchants_flag(merchants),
        ],
    )
    running = start_stack(stack)
    try:
        open_all(running, merchants)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def console(console_stack: Stack) -> Iterator[ServiceProcess]:
    accounts = console_stack.workdir / "console" / "accounts.json"
    for name, roles in OPERATORS.items():
        add_account(accounts, new_account(name, roles, PASSWORD), replace=True)
    process = console_process(console_stack, accounts)
    process.start("127.0.0.1:0")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("RC_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def driver() -> Iterator[object]:
    missing = [path for path in CHROMIUM if not shutil.which(path)]
    if missing:
        pytest.skip(f"no headless browser: {', '.join(missing)} missing (make browser installs Debian's "
                    "chromium and chromium-driver as root)")  # fmt: skip
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1000", "--lang=en-US", "--disable-extensions"):  # fmt: skip
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    browser = webdriver.Chrome(service=Service(executable_path=CHROMIUM[1]), options=options)
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()

