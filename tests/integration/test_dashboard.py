"""The dashboard in a real headless Chromium against a real worker crawling the simulator: it
loads with no console error and no request beyond 127.0.0.1, shows what /status gives, follows
the crawl, its buttons start and stop the crawl (with and without an admin token), and text
from the data that holds markup is shown as text. Screenshots at laptop and phone widths are
saved under artifacts/.

Chromium is Debian's (`apt-get install chromium`), driven by the `playwright` package without
a browser of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Route,
    sync_playwright,
)

from tests.harness import ROOT, TASK_ID, Simulator, Worker, http, wait_until

pytestmark = pytest.mark.slow

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
SIZES = {"laptop": (1366, 900), "phone": (390, 844)}

OTHER_TASK = "5d0c1c3e-0000-4000-8000-00000000beef"
MARKUP = '<script>window.__xss = 1</script><img src="/x.png" onerror="window.__xss = 2">'
OTHER_NAME = f"上海招聘 {MARKUP}"
# A task the simulator does not know: the API's error, which echoes the id, is its last_error.
BAD_TASK = f"bad-{MARKUP}"
TOTAL = 400
TOKEN = "dashboard-admin-token"


@dataclass
class Browser:
    context: BrowserContext
    page: Page
    origin: str
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    posts: list[tuple[str, str | None]] = field(default_factory=list)  # (path, content type)

    def open(self, path: str = "/") -> Page:
        self.page.goto(f"{self.origin}{path}")
        self.page.wait_for_selector("#tasks .task")
        return self.page

    def card(self, task_id: str) -> Any:
        return self.page.locator("#tasks .task").filter(
            has=self.page.locator(
                "[data-field=task_id]", has_text=re.compile(f"^{re.escape(task_id)}$")
            )
        )


def start_browser(playwright: Any, profile: Path, origin: str) -> Browser:
    """Chromium with a fresh profile; every request is recorded, and any that would leave
    127.0.0.1 is refused and recorded as outside."""
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
        if request.method == "POST":
            browser.posts.append((urlsplit(request.url).path, request.headers.get("content-type")))
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


@dataclass
class Stack:
    sim: Simulator
    worker: Worker
    browser: Browser

    def status(self, task_id: str | None = None) -> dict[str, Any]:
        query = f"?task_id={quote(task_id)}" if task_id else ""
        code, body = http("GET", f"{self.worker.url}/status{query}")
        assert code == 200, body
        return dict(body["data"])

    def wait_status(self, predicate: Any, task_id: str, within: float = 60) -> dict[str, Any]:
        def met() -> dict[str, Any] | None:
            status = self.status(task_id)
            return status if predicate(status) else None

        return wait_until(met, within, f"the status of {task_id} ({self.worker.log()[-1500:]})")


def start_stack(tmp: Path, playwright: Any, *, api: dict[str, Any], app: dict[str, Any]) -> Stack:
    sim = Simulator.start(
        "--rate-limit", "0", "--total", str(TOTAL), "--task-id", TASK_ID, "--task-id", OTHER_TASK
    )
    worker = Worker.configure(
        tmp, {"api": sim.api(batch_size=50, **api), "crawler": {"interval": 1}, "app": app}
    )
    worker.start()
    worker.wait_ready()
    browser = start_browser(playwright, tmp / "profile", worker.url)
    return Stack(sim, worker, browser)


def stop_stack(stack: Stack) -> None:
    stack.browser.context.close()
    stack.worker.stop()
    stack.sim.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, playwright: Any) -> Iterator[Stack]:
    """Three tasks, no admin token: two crawled to the end, one failing with markup in its
    error."""
    found = start_stack(
        tmp_path_factory.mktemp("dashboard"),
        playwright,
        api={
            "task_id": TASK_ID,
            "tasks": [{"id": OTHER_TASK, "name": OTHER_NAME}, {"id": BAD_TASK}],
        },
        app={},
    )
    try:
        for task_id in (TASK_ID, OTHER_TASK):
            found.wait_status(lambda s: s["current_offset"] == TOTAL, task_id)
        found.wait_status(lambda s: s["status"] == "error", BAD_TASK)
        yield found
    finally:
        stop_stack(found)


# -- what the page shows, as the page formats it --------------------------------------------


def count(value: Any) -> str:
    return "—" if value is None else f"{round(value):,}"


def rate(value: Any) -> str:
    if value is None:
        return "—"
    text = f"{round(value, 1):,.1f}"
    return text[:-2] if text.endswith(".0") else text


def millis(value: Any) -> str:
    return "—" if value is None else f"{rate(value)} ms"


def expected_card(status: dict[str, Any]) -> dict[str, str]:
    rows, latency = status["rows"], status["api_latency_ms"]
    return {
        # A task without a name is not titled with its id (the id is shown beneath).
        "name": "未命名任务" if status["name"] == status["task_id"] else status["name"],
        "status": {"idle": "空闲", "running": "运行中", "stopped": "已停止", "error": "出错"}[
            status["status"]
        ],
        "progress": status["progress"],
        "current_offset": count(status["current_offset"]),
        "total": count(status["total"]),
        # The speed: rows per minute over the last 10 s, whole rows.
        "rows_per_minute": count(status["rows_per_minute_now"]),
        "published": count(rows["published"]),
        "filtered": count(rows["filtered"]),
        "rejected": count(rows["rejected"]),
        "duplicates": count(rows["duplicates"]),
        "api_p50": millis(latency["p50"]),
        "api_p95": millis(latency["p95"]),
        "last_error": status["last_error"] or "",
    }


SHOWN = """() => Array.from(document.querySelectorAll("#tasks .task")).map((card) => {
  const shown = {};
  card.querySelectorAll("[data-field]").forEach((e) => { shown[e.dataset.field] = e.textContent; });
  shown.bar = card.querySelector(".progress").getAttribute("aria-valuenow");
  return shown;
})"""


def shown_cards(page: Page) -> dict[str, dict[str, str]]:
    return {card["task_id"]: card for card in page.evaluate(SHOWN)}


def field_of(page: Page, task_id: str, name: str) -> str:
    return shown_cards(page).get(task_id, {}).get(name, "")


# -- the tests ------------------------------------------------------------------------------


def test_dashboard_loads_with_no_console_error_and_no_outside_request(stack: Stack) -> None:
    browser = stack.browser
    page = browser.open("/")
    assert urlsplit(page.url).path == "/dashboard"
    assert page.title() == "jobstream 采集仪表盘"
    wait_until(lambda: len(shown_cards(page)) == 3, 10, "three task cards")
    page.wait_for_function("() => document.querySelector('#connection').textContent === '已连接'")
    assert browser.errors == []
    assert browser.outside == []
    paths = {urlsplit(url).path for url in browser.requests}
    # The redirect from / to /dashboard is followed within the one request.
    assert {"/", "/dashboard/app.js", "/dashboard/app.css", "/status", "/status/history"} <= paths
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in browser.requests)


def test_dashboard_shows_the_numbers_status_gives(stack: Stack) -> None:
    """The page's numbers are those of the /status answer it last rendered (read from the
    browser's own response, so a poll between two reads cannot make them differ)."""
    page = stack.browser.open()

    def matches() -> Any:
        with page.expect_response(lambda r: urlsplit(r.url).path == "/status") as answer:
            pass
        body = answer.value.json()["data"]
        expected = {t["task_id"]: expected_card(t) for t in body["tasks"]}
        try:
            # The page renders right after the answer arrives, well before the next poll.
            page.wait_for_function(
                "([id, offset]) => Array.from(document.querySelectorAll('#tasks .task'))"
                ".some((c) => c.querySelector('[data-field=task_id]').textContent === id"
                " && c.querySelector('[data-field=current_offset]').textContent === offset)",
                arg=[TASK_ID, expected[TASK_ID]["current_offset"]],
                timeout=1500,
            )
        except Exception:
            return None
        shown = shown_cards(page)
        return {
            task_id: {k: shown[task_id].get(k) for k in card} for task_id, card in expected.items()
        } == expected and (body, shown)

    body, shown = wait_until(matches, 20, "the page showing the /status it received")
    assert [t["task_id"] for t in body["tasks"]] == [TASK_ID, OTHER_TASK, BAD_TASK]
    summary = page.evaluate(
        "() => [document.querySelector('#sum-rows-per-minute').textContent,"
        " document.querySelector('#sum-kafka-lag').textContent]"
    )
    assert summary[1] == count(body["kafka_lag"])
    assert shown[TASK_ID]["bar"] == "100"
    assert stack.browser.errors == []


def test_dashboard_follows_the_crawl_as_it_moves(stack: Stack) -> None:
    page = stack.browser.open()
    before = stack.status(TASK_ID)["total"]
    stack.sim.grow(150)
    grown = count(before + 150)
    wait_until(
        lambda: field_of(page, TASK_ID, "current_offset") == grown, 30, f"offset {grown} shown"
    )
    wait_until(lambda: field_of(page, TASK_ID, "total") == grown, 10, f"total {grown} shown")
    assert stack.status(TASK_ID)["current_offset"] == before + 150
    # The chart has points for the task and the lag (drawn from /status/history and the polls).
    assert page.locator("#legend li").count() == 4
    assert stack.browser.errors == [] and stack.browser.outside == []


def test_dashboard_buttons_stop_and_start_without_a_token(stack: Stack) -> None:
    page = stack.browser.open()
    stack.browser.card(TASK_ID).locator("[data-action=stop]").click()
    page.wait_for_function(
        "() => document.querySelector('#message').textContent.startsWith('已停止')"
    )
    assert page.locator("#token-dialog[open]").count() == 0
    assert stack.status(TASK_ID)["status"] == "stopped"
    wait_until(lambda: field_of(page, TASK_ID, "status") == "已停止", 10, "stopped shown")
    stopped_at = stack.status(TASK_ID)["current_offset"]
    stack.sim.grow(50)
    stack.wait_status(lambda s: s["current_offset"] == stopped_at + 50, OTHER_TASK)
    assert stack.status(TASK_ID)["current_offset"] == stopped_at  # stays stopped

    stack.browser.card(TASK_ID).locator("[data-action=start]").click()
    stack.wait_status(lambda s: s["current_offset"] == stopped_at + 50, TASK_ID)
    wait_until(lambda: field_of(page, TASK_ID, "status") != "已停止", 10, "started shown")

    page.locator("#stop-all").click()
    page.wait_for_function(
        "() => document.querySelector('#message').textContent === '已停止全部任务。'"
    )
    assert {t["status"] for t in stack.status()["tasks"]} == {"stopped"}
    page.locator("#start-all").click()
    page.wait_for_function(
        "() => ['已开始全部任务。', '命令已发送，全部任务尚未全部生效。']"
        ".includes(document.querySelector('#message').textContent)"
    )
    assert "stopped" not in {t["status"] for t in stack.status()["tasks"]}
    # Commands are sent as JSON: a request no other site's page can make without asking.
    assert {path for path, _ in stack.browser.posts} == {"/crawl/start", "/crawl/stop"}
    assert {kind for _, kind in stack.browser.posts} == {"application/json"}
    assert stack.browser.errors == []


def test_dashboard_markup_in_names_and_errors_is_shown_as_text(stack: Stack) -> None:
    page = stack.browser.open()
    wait_until(lambda: field_of(page, BAD_TASK, "status") == "出错", 10, "the failing task shown")
    cards = shown_cards(page)
    assert cards[OTHER_TASK]["name"] == OTHER_NAME
    assert cards[BAD_TASK]["task_id"] == BAD_TASK
    error = stack.status(BAD_TASK)["last_error"]
    assert MARKUP in error and cards[BAD_TASK]["last_error"] == error
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("#tasks script, #tasks img, #legend script, #legend img").count() == 0
    assert page.locator("script").count() == 1  # app.js alone
    assert "/x.png" not in " ".join(stack.browser.requests)
    assert stack.browser.errors == []


def test_dashboard_screenshots_at_laptop_and_phone_widths(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    page = stack.browser.open()
    ARTIFACTS.mkdir(exist_ok=True)
    for name, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)  # the chart redraws on resize
        columns = page.evaluate(
            "() => getComputedStyle(document.querySelector('#tasks')).gridTemplateColumns"
            ".split(' ').length"
        )
        assert columns == (1 if width < 700 else 3), (name, columns)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        path = ARTIFACTS / f"dashboard-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        with capsys.disabled():
            print(f"\nscreenshot ({width}x{height}): {path}")
    page.set_viewport_size({"width": 1366, "height": 900})
    assert stack.browser.errors == []


# -- with an admin token --------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, playwright: Any) -> Iterator[Stack]:
    """One task, an admin token: /status answers the single task's shape."""
    found = start_stack(
        tmp_path_factory.mktemp("guarded"),
        playwright,
        api={"task_id": TASK_ID},
        app={"admin_token": TOKEN},
    )
    try:
        found.wait_status(lambda s: s["current_offset"] == TOTAL, TASK_ID)
        yield found
    finally:
        stop_stack(found)


def test_dashboard_buttons_ask_for_the_admin_token_once(guarded: Stack) -> None:
    page = guarded.browser.open()
    assert len(shown_cards(page)) == 1
    card = guarded.browser.card(TASK_ID)
    card.locator("[data-action=stop]").click()
    page.wait_for_selector("#token-dialog[open]")
    page.fill("#token-input", TOKEN)
    page.click("#token-save")
    page.wait_for_function(
        "() => document.querySelector('#message').textContent.startsWith('已停止')"
    )
    assert guarded.status()["status"] == "stopped"
    assert page.evaluate("() => sessionStorage.getItem('jobstream.adminToken')") == TOKEN
    # Kept for this tab: the next command does not ask again.
    card.locator("[data-action=start]").click()
    page.wait_for_function(
        "() => document.querySelector('#message').textContent.startsWith('已开始')"
    )
    assert page.locator("#token-dialog[open]").count() == 0
    assert guarded.status()["status"] in ("idle", "running")
    # Forgotten, then refused: nothing is sent.
    page.click("#forget-tokens")
    card.locator("[data-action=stop]").click()
    page.wait_for_selector("#token-dialog[open]")
    page.click("#token-cancel")
    page.wait_for_function(
        "() => document.querySelector('#message').textContent === '已取消：没有令牌。'"
    )
    assert guarded.status()["status"] in ("idle", "running")
    assert guarded.browser.errors == [] and guarded.browser.outside == []
    assert TOKEN not in guarded.worker.log()
