"""The dashboard in Debian's headless Chromium, driven by the `playwright` package without a
browser of its own, for the browser tests of tests/integration/test_dashboard_*.py: a fresh
profile, every request recorded (any that would leave 127.0.0.1 refused), console errors kept,
and what the page shows read as text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Route,
    sync_playwright,
)

from tests.harness import ROOT

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "artifacts"


@dataclass
class Browser:
    context: BrowserContext
    page: Page
    origin: str
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def open(self, path: str = "/") -> Page:
        self.page.goto(f"{self.origin}{path}")
        self.page.wait_for_selector("#tasks .task")
        return self.page

    def close(self) -> None:
        self.context.close()

    def card(self, task_id: str) -> Any:
        return self.page.locator("#tasks .task").filter(
            has=self.page.locator(
                "[data-field=task_id]", has_text=re.compile(f"^{re.escape(task_id)}$")
            )
        )

    def card_text(self, task_id: str) -> str:
        """What the task's card shows, its hidden parts left out."""
        card = self.card(task_id)
        return str(card.inner_text()) if card.count() else ""

    def banners(self) -> str:
        return str(self.page.locator("#banners").inner_text())

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"dashboard-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        print(f"\nscreenshot: {path}")
        return path


def start_browser(playwright: Any, profile: Path, origin: str) -> Browser:
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=FLAGS,
        viewport={"width": 1366, "height": 900},
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    page = context.pages[0] if context.pages else context.new_page()
    browser = Browser(context, page, origin)

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            browser.errors.append(f"{message.type}: {message.text}")

    def route(route: Route, request: Request) -> None:
        browser.requests.append(request.url)
        if urlsplit(request.url).hostname != "127.0.0.1":
            browser.outside.append(request.url)
            route.abort()
        else:
            route.continue_()

    page.on("console", console)
    page.on("pageerror", lambda error: browser.errors.append(f"pageerror: {error}"))
    context.route("**/*", route)
    return browser


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install chromium"
    with sync_playwright() as driver:
        yield driver


def wait_text(page: Page, selector: str, needle: str, within: float = 10.0) -> str:
    """The text of `selector` once it contains `needle` (TimeoutError after `within` s)."""
    page.wait_for_function(
        "([selector, needle]) => { const e = document.querySelector(selector);"
        " return e !== null && e.innerText.includes(needle); }",
        arg=[selector, needle],
        timeout=within * 1000,
    )
    return str(page.locator(selector).inner_text())
