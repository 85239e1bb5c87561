"""A real server and a real Chromium for the web page tests.

The server is the whole app under uvicorn on a free localhost port, in a thread of the test
process, on the test database. Its clock is real time plus an offset the tests can move
forward, so "an hour passes" takes no waiting; the sweeper runs on that clock every second.
Chromium is Debian's (/usr/bin/chromium), driven by Playwright.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app.core.clock import Clock
from app.core.config import Settings
from app.main import create_app
from tests.conftest import IN_CI, TEST_PASSWORD, _truncate
from tests.processes import free_port

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SESSION_TTL_SECONDS = 600
HOW_TO_INSTALL = (
    "Chromium is needed for the web page tests: install it with "
    "`apt-get install -y chromium` (or `make browser-deps` as root)."
)


# Generous waits: two cores may be busy with other work while these tests run.
EXPECT_TIMEOUT_MS = 15_000


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


class ShiftedClock(Clock):
    """Real time plus an offset that only grows."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)


@dataclass
class LiveServer:
    url: str
    clock: ShiftedClock
    settings: Settings
    app: Any
    server: uvicorn.Server
    thread: threading.Thread
    _emails: list[str] = field(default_factory=list)

    def expire_sessions(self) -> None:
        """Lets more than the session TTL pass; the sweeper archives idle sessions."""
        self.clock.advance(self.settings.session_ttl_seconds + 1)

    def new_email(self, tag: str = "user") -> str:
        email = f"{tag}-{uuid.uuid4().hex[:10]}@example.com"
        self._emails.append(email)
        return email


def _settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_env": "test",
        "database_url": database_url,
        "data_dir": data_dir,
        "secret_key": "web-test-secret-" + "x" * 40,
        "log_level": "WARNING",
        "session_ttl_seconds": SESSION_TTL_SECONDS,
        "sweep_interval_seconds": 1,
        "sweeper_enabled": True,
        # Many sign-ups and conversations from one address in a few seconds.
        "rate_limit_auth": "1000/minute",
        "rate_limit_chat": "1000/minute;10000/day",
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.contextmanager
def running_server(
    settings: Settings, *, sweeper: bool = True, clock: ShiftedClock | None = None
) -> Iterator[LiveServer]:
    clock = clock or ShiftedClock()
    app = create_app(settings, clock=clock, migrate=False, run_sweeper=sweeper)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"web-test-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the web test server did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    try:
        yield LiveServer(
            url=url, clock=clock, settings=settings, app=app, server=server, thread=thread
        )
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="package")
def live_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    asyncio.run(_truncate(database_url))  # a fresh sweeper schedule and no leftovers
    settings = _settings(database_url, tmp_path_factory.mktemp("web-data"))
    with running_server(settings) as live:
        yield live


@pytest.fixture
def tight_server(live_server: LiveServer, tmp_path: Path) -> Iterator[LiveServer]:
    """A second server on the same database that allows two chat messages a minute.

    It keeps the first server's time: that one's sweeper archives by its clock, so a
    server with another clock would see its conversations expire at once."""
    assert live_server.settings.database_url
    settings = _settings(live_server.settings.database_url, tmp_path, rate_limit_chat="2/minute")
    with running_server(settings, sweeper=False, clock=live_server.clock) as live:
        yield live


@pytest.fixture(scope="package")
def browser(live_server: LiveServer) -> Iterator[Any]:
    # Set up after the server: Playwright's sync API keeps an event loop running in this
    # thread, and the database fixtures need to run their own before it starts.
    executable = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if not executable:
        _unavailable(f"No Chromium at {CHROMIUM}. {HOW_TO_INSTALL}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed: run `make install` (it is in the dev extra).")
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


class Page:
    """A signed-in (or not) browser tab, with the few moves every test makes."""

    def __init__(self, page: Any, server: LiveServer) -> None:
        self.page = page
        self.server = server
        self.dialogs: list[str] = []
        self.console_errors: list[str] = []
        page.on("dialog", self._on_dialog)
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def open(self) -> Page:
        self.page.goto(self.server.url + "/")
        return self

    def sign_up(self, email: str) -> Page:
        from playwright.sync_api import expect

        p = self.page
        p.get_by_role("button", name="Create an account").click()
        p.get_by_label("Email").fill(email)
        p.get_by_label("Password").fill(TEST_PASSWORD)
        p.get_by_role("button", name="Create account").click()
        expect(p.locator("#who")).to_have_text(email)
        return self

    def sign_in(self, email: str) -> Page:
        from playwright.sync_api import expect

        p = self.page
        p.get_by_label("Email").fill(email)
        p.get_by_label("Password").fill(TEST_PASSWORD)
        p.get_by_role("button", name="Sign in").click()
        expect(p.locator("#who")).to_have_text(email)
        return self

    def say(self, text: str) -> None:
        """Types a message and sends it with Enter; waits for the assistant's answer."""
        from playwright.sync_api import expect

        p = self.page
        box = p.get_by_label("Message", exact=True)
        box.fill(text)
        box.press("Enter")
        expect(p.locator("#messages .msg-user .msg-text").last).to_have_text(text)
        self.wait_for_reply()

    def wait_for_reply(self) -> None:
        """Waits until no reply is streaming and the last message is the assistant's."""
        from playwright.sync_api import expect

        p = self.page
        expect(p.locator(".msg-typing, .msg-streaming")).to_have_count(0)
        expect(p.locator("#messages")).to_have_attribute("aria-busy", "false")
        expect(p.locator("#messages > li").last).to_have_class(re.compile(r"\bmsg-assistant\b"))

    def wait_for_rows(self, tab: str, count: int, timeout: float = 20.0) -> Any:
        """Re-opens a History tab until it lists `count` rows (a background job is due)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.history(tab)
            self.page.wait_for_function(
                "() => document.getElementById('history-list').ariaBusy === 'false'"
            )
            if rows.count() == count or time.monotonic() > deadline:
                return rows
            self.page.wait_for_timeout(250)

    def session_id(self) -> str | None:
        """The conversation the chat continues, as the page keeps it for this user."""
        found = self.page.evaluate(
            "() => Object.entries(localStorage)"
            ".find(([key]) => key.startsWith('chatkeep:session:'))?.[1]"
        )
        return str(found) if found else None

    def last_reply(self) -> str:
        return str(self.page.locator("#messages .msg-assistant .msg-text").last.inner_text())

    def history(self, tab: str = "Active") -> Any:
        """Selects a History tab and returns the list of rows."""
        p = self.page
        if p.locator("#view-nav").is_visible():
            p.get_by_role("button", name="History", exact=True).click()
        p.get_by_role("tab", name=tab, exact=True).click()
        return p.locator("#history-list li.row")


@pytest.fixture
def new_page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """new_page(**context_options) -> Page in a fresh browser context (its own cookies)."""
    contexts: list[Any] = []
    pages: list[Page] = []

    def make(server: LiveServer | None = None, **options: Any) -> Page:
        options.setdefault("viewport", {"width": 1280, "height": 860})
        options.setdefault("accept_downloads", True)
        context = browser.new_context(**options)
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        contexts.append(context)
        page = Page(context.new_page(), server or live_server)
        pages.append(page)
        return page

    yield make
    for context in contexts:
        context.close()
    errors = [e for page in pages for e in page.console_errors if not _expected_console_error(e)]
    assert not errors, f"the page logged errors: {errors}"


def _expected_console_error(text: str) -> bool:
    # Browsers log every non-2xx fetch (the page handles them: 401 before sign-in, 404 etc.).
    return bool(re.search(r"Failed to load resource: the server responded with a status of", text))


@pytest.fixture
def use_assistant(live_server: LiveServer) -> Iterator[Any]:
    """use_assistant(a) answers this test's chat messages with `a`; the server's own
    assistant is back afterwards."""
    original = live_server.app.state.assistant

    def use(assistant: Any) -> Any:
        live_server.app.state.assistant = assistant
        return assistant

    yield use
    live_server.app.state.assistant = original


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=15) as client:
        yield client
