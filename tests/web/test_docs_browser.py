"""GET /docs in a real headless Chromium (Debian's, driven by playwright): Swagger UI renders
every operation under the page's policy (no inline script or style: any violation is a console
error), and a token entered under "Authorize" is kept by no storage the browser writes: gone
when the page is closed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.web.conftest import Dataset, Served, config_for, serve

CHROMIUM = "/usr/bin/chromium"
TOKEN = "docs-browser-admin-token-7Qz"


@pytest.fixture(scope="module")
def documented(dataset: Dataset) -> Iterator[Served]:
    """The app with both tokens, served from a thread of its own: the browser is driven
    synchronously from this one."""
    config = config_for(
        dataset.bootstrap, dataset.topic, app={"admin_token": TOKEN, "read_token": TOKEN + "r"}
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    served = asyncio.run_coroutine_threadsafe(serve(config), loop).result(30)
    try:
        yield served
    finally:
        asyncio.run_coroutine_threadsafe(served.client.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_docs_page_renders_under_its_policy_and_keeps_no_token(
    documented: Served, tmp_path: Path
) -> None:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install chromium"
    problems: list[str] = []
    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.on(
                "console",
                lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{documented.url}/docs")
            page.wait_for_selector(".opblock-summary-path")
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            assert {"/consume", "/crawl/stop", "/status"} <= {p.strip() for p in paths}

            page.click("button.authorize")
            page.fill(".modal-ux input[type=text]", TOKEN)
            page.click(".modal-ux button.authorize")
            page.click(".modal-ux button.btn-done")
            stored = page.evaluate(
                "() => JSON.stringify([Object.entries(localStorage),"
                " Object.entries(sessionStorage), document.cookie])"
            )
            assert TOKEN not in stored, stored

            page.reload()
            page.wait_for_selector(".opblock-summary-path")
            assert page.locator("button.authorize.locked").count() == 0
        finally:
            context.close()
    # A violation of the page's policy (an inline style Swagger UI would need) shows here.
    assert problems == [], problems
