"""Browser fixtures: the app started from the Procfile, a fake upstream, Debian's Chromium.

Every page a test opens fails the test on any JavaScript dialog, uncaught error or
console error, so a reply that manages to run script, or a broken page, never passes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from harness.fake_upstream import FakeUpstream, echo_reply
from harness.paas import ROOT, PaasApp, app_environment
from tests.conftest import API_KEY

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is a browser test (-m 'not browser' leaves them out)."""
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.browser)


def missing(what: str) -> None:
    """Skip on a developer's machine; in CI a missing browser is a failure."""
    message = f"{what} (scripts/test installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser_upstream() -> Iterator[FakeUpstream]:
    """The fake upstream the browser tests' app server talks to."""
    with FakeUpstream(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def upstream(browser_upstream: FakeUpstream) -> FakeUpstream:
    """The fake upstream, reset for this test (replies echo unless one is enqueued)."""
    browser_upstream.reset()
    browser_upstream.default_reply = echo_reply
    return browser_upstream


@pytest.fixture(scope="session")
def start_server(tmp_path_factory, browser_upstream) -> Iterator[Callable[..., PaasApp]]:
    """Start an app server as the Procfile does, with settings on top of the defaults."""
    servers: list[PaasApp] = []

    def start(name: str, **settings: str) -> PaasApp:
        database = tmp_path_factory.mktemp(name) / "chat.db"
        # No model-written titles: each test scripts its replies, and a title request
        # would take one of them. Every browser comes from 127.0.0.1, so the per-address
        # send limit is lifted (the per-browser one stays).
        settings = {"REGOLO_BASE_URL": browser_upstream.base_url, "REGOLO_API_KEY": API_KEY,
                    "TITLE_GENERATION": "0", "MESSAGES_PER_MINUTE_PER_IP": "10000",
                    **settings}
        env = app_environment(f"sqlite:///{database}", **settings)
        # Each pytest-xdist worker starts servers of its own: one log each.
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")
        server = PaasApp(env, ARTIFACTS / f"server-{name}{worker and '-' + worker}.log")
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def server(start_server) -> PaasApp:
    """The app server most browser tests share."""
    return start_server("main")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless (never a browser downloaded by Playwright)."""
    executable = shutil.which("chromium")
    if executable is None:
        missing("Chromium is not installed")
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


class PageProblems:
    """Dialogs, uncaught errors and console errors seen on the pages of one context."""

    def __init__(self, expected: tuple[str, ...] = ()) -> None:
        self.seen: list[str] = []
        self.expected = expected  # console errors containing one of these are expected

    def watch(self, page: Page) -> None:
        def on_dialog(dialog) -> None:
            self.seen.append(f"dialog {dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: self.seen.append(f"page error: {error}"))
        page.on("console", self.on_console)

    def on_console(self, message) -> None:
        if message.type == "error" and not any(e in message.text for e in self.expected):
            self.seen.append(f"console error: {message.text}")


@pytest.fixture
def new_context(browser: Browser, server: PaasApp) -> Iterator[Callable[..., BrowserContext]]:
    """Make a fresh browser context (its own cookies) on the app; checked for problems.

    expected_console_errors: texts of console errors the test causes on purpose (a page
    that answers 410, say).
    """
    contexts: list[tuple[BrowserContext, PageProblems]] = []

    def make(expected_console_errors: tuple[str, ...] = (), **options) -> BrowserContext:
        options = {"base_url": server.url, "viewport": DESKTOP, **options}
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        problems = PageProblems(expected_console_errors)
        context.on("page", problems.watch)
        contexts.append((context, problems))
        return context

    yield make
    seen = [problem for context, problems in contexts for problem in problems.seen]
    for context, _ in contexts:
        context.close()
    assert not seen, "the page had problems:\n" + "\n".join(seen)


@pytest.fixture
def page(new_context) -> Page:
    """A page in a fresh desktop context."""
    return new_context().new_page()
