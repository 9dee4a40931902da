"""A real browser for the inspector's tests: Debian's chromium driven by Playwright, each
tab's console watched (an error there fails the test), screenshots for the docs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).parent.parent / "docs" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}


class Tab:
    """A page of its own browser context (its own sessionStorage), its console errors
    kept unless a pattern in `allowed` expects them."""

    def __init__(self, page: Page, allowed: tuple[str, ...]) -> None:
        self.page = page
        self.allowed = [re.compile(pattern) for pattern in allowed]
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self._keep(f"console: {message.text} at {message.location.get('url')}")

    def _page_error(self, error: Error) -> None:
        self._keep(f"uncaught: {error.message}")

    def _keep(self, text: str) -> None:
        if not any(pattern.search(text) for pattern in self.allowed):
            self.errors.append(text)

    def screenshot(self, name: str, *, full_page: bool = False) -> None:
        """The viewport (or the whole page) as docs/screenshots/<name>.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=path, animations="disabled", full_page=full_page)


OpenTab = Callable[..., Tab]


EXPECT_SECONDS = 10
"""How long an expectation waits (a reconnect after a restart takes a few seconds)."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser per module: Playwright's synchronous API runs an event loop of its own
    in this thread while it is open, which asyncio tests of later modules must not meet."""
    expect.set_options(timeout=EXPECT_SECONDS * 1000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def open_tab(browser: Browser) -> Iterator[OpenTab]:
    """``open_tab(url, user=None, viewport=DESKTOP, allow=())``: a new tab on `url`; in
    local mode `user` is who it acts as. After the test, no tab may have logged an error."""
    tabs: list[Tab] = []

    def open_(
        url: str,
        *,
        user: str | None = None,
        viewport: ViewportSize = DESKTOP,
        allow: tuple[str, ...] = (),
    ) -> Tab:
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(EXPECT_SECONDS * 1000)
        if user is not None:
            context.add_init_script(
                f"sessionStorage.setItem('loremaster.user', {json.dumps(user)})"
            )
        tab = Tab(context.new_page(), allow)
        tabs.append(tab)
        tab.page.goto(url)
        return tab

    yield open_
    errors = [error for tab in tabs for error in tab.errors]
    for tab in tabs:
        tab.page.context.close()
    assert not errors, "\n".join(errors)
