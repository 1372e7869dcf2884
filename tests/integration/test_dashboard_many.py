"""The dashboard with many tasks (issue 17): a real worker with 50 small tasks (5 of them unknown
to the API, so failing), and the same page fed a /status of 200 tasks. Failing tasks come
first, the state chips count and filter, the text filter finds a task by name or id, the sort
orders by name, and the chart draws the tasks' sum instead of 200 lines."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Page, Route

from tests.harness import Simulator, Worker, http, wait_until
from tests.integration.dashboard_page import Browser, playwright, start_browser, wait_text

pytestmark = pytest.mark.slow

__all__ = ["playwright"]  # the fixture, used by the tests below

KNOWN = 45
UNKNOWN = 5
ROWS = 60


def task_id(n: int) -> str:
    return f"many-{n:03d}"


# Names out of configured order: the name sort must reorder them.
def name(n: int) -> str:
    return f"任务 {(n * 37) % 100:03d}"


@dataclass
class Many:
    worker: Worker
    browser: Browser
    failing: list[str]


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory, playwright: Any) -> Iterator[Many]:
    tmp = tmp_path_factory.mktemp("many")
    known = [task_id(n) for n in range(KNOWN)]
    # The unknown ones among the others in the configured order, not first.
    unknown = [f"missing-{n}" for n in range(UNKNOWN)]
    order = known[:10] + unknown[:2] + known[10:30] + unknown[2:] + known[30:]
    sim = Simulator.start(
        "--rate-limit", "0", "--total", str(ROWS), *[arg for t in known for arg in ("--task-id", t)]
    )
    tasks = [{"id": t, "name": name(i)} for i, t in enumerate(order)]
    worker = Worker.configure(
        tmp,
        {
            "api": sim.api(batch_size=100, task_id=order[0], tasks=tasks),
            "crawler": {"interval": 30},
        },
    )
    browser = None
    try:
        worker.start()
        worker.wait_ready()

        def settled() -> bool:
            code, body = http("GET", f"{worker.url}/status")
            tasks = body["data"]["tasks"] if code == 200 else []
            return len(tasks) == len(order) and all(
                t["status"] == ("error" if t["task_id"] in unknown else "idle")
                and (t["task_id"] in unknown or t["current_offset"] == ROWS)
                for t in tasks
            )

        wait_until(settled, 90, "every task crawled or failing")
        browser = start_browser(playwright, tmp / "profile", worker.url)
        yield Many(worker, browser, unknown)
    finally:
        if browser is not None:
            browser.close()
        worker.stop()
        sim.stop()


def visible_ids(page: Page) -> list[str]:
    return list(
        page.evaluate(
            """() => Array.from(document.querySelectorAll('#tasks .task'))
            .filter((c) => !c.hidden).map((c) => c.dataset.taskId)"""
        )
    )


def chip(page: Page, state: str) -> Any:
    return page.locator(f"#state-filter [data-state={state}]")


def test_dashboard_50_tasks_failing_first_chips_filter_and_sort(many: Many) -> None:
    page = many.browser.open()
    wait_until(lambda: len(visible_ids(page)) == KNOWN + UNKNOWN, 10, "every card")
    # Failing first, in their configured order; the others after, in theirs.
    wait_until(lambda: visible_ids(page)[:UNKNOWN] == many.failing, 10, "failing first")
    banner = wait_text(page, "#banners", f"{UNKNOWN} 个任务采集失败")
    assert "任务 ID 不存在" in banner
    assert chip(page, "error").inner_text() == f"出错 {UNKNOWN}"
    assert chip(page, "idle").inner_text() == f"空闲 {KNOWN}"

    chip(page, "error").click()
    assert visible_ids(page) == many.failing
    assert page.locator("#tasks-shown").inner_text() == f"显示 {UNKNOWN} / {KNOWN + UNKNOWN} 个"
    chip(page, "error").click()  # again: every state
    assert len(visible_ids(page)) == KNOWN + UNKNOWN

    # By name, and by a piece of the id.
    page.fill("#task-filter", name(7))
    assert visible_ids(page) == [task_id(7)]
    page.fill("#task-filter", "missing-")
    assert sorted(visible_ids(page)) == sorted(many.failing)
    page.fill("#task-filter", "")

    page.select_option("#task-sort", "name")
    shown = page.evaluate(
        """() => Array.from(document.querySelectorAll('#tasks .task [data-field=name]'))
        .map((e) => e.textContent)"""
    )
    assert shown == sorted(shown) and len(shown) == KNOWN + UNKNOWN
    page.select_option("#task-sort", "problems")
    # 50 lines would be unreadable: the chart draws their sum.
    assert wait_text(page, "#legend", f"全部 {KNOWN + UNKNOWN} 个任务合计")
    assert many.browser.errors == [] and many.browser.outside == []


def stub_listing(real: dict[str, Any], count: int) -> dict[str, Any]:
    """A listing of `count` tasks made from a real one: every 17th failing (bad credentials),
    every 23rd unavailable, every 11th running, every 13th stopped, every 19th disabled."""
    template = next(t for t in real["tasks"] if t["status"] == "idle")
    tasks = []
    for n in range(count):
        task = copy.deepcopy(template)
        task.update(task_id=f"stub-{n:03d}", name=name(n), rows_per_minute_now=0)
        if n % 17 == 5:
            task.update(
                status="error",
                last_error="authentication: the Bazhuayu API refused the credentials",
                error_kind="credentials",
                consecutive_failures=2,
            )
        elif n % 23 == 7:
            task = {
                "task_id": task["task_id"], "name": task["name"], "enabled": True,
                "status": "unavailable", "error": "no answer for the task within 3s",
            }  # fmt: skip
        elif n % 11 == 3:
            task.update(status="running", rows_per_minute_now=1200)
        elif n % 13 == 4:
            task.update(status="stopped")
        elif n % 19 == 2:
            task.update(enabled=False)
        tasks.append(task)
    return {**real, "tasks": tasks}


def test_dashboard_200_tasks_from_a_stubbed_status(many: Many) -> None:
    code, body = http("GET", f"{many.worker.url}/status")
    assert code == 200
    listing = stub_listing(body["data"], 200)
    failing = [t["task_id"] for t in listing["tasks"] if t["status"] in ("error", "unavailable")]
    running = sum(t["status"] == "running" for t in listing["tasks"])
    stubbed = json.dumps({"code": 0, "data": listing}, ensure_ascii=False)
    page = many.browser.page
    answered: list[float] = []

    def status(route: Route) -> None:
        answered.append(time.monotonic())
        route.fulfill(status=200, content_type="application/json", body=stubbed)

    page.route("**/status", status)
    try:
        many.browser.open()
        wait_until(lambda: len(visible_ids(page)) == 200, 10, "200 cards")
        shown_in = time.monotonic() - answered[0]
        assert visible_ids(page)[: len(failing)] == failing
        banner = wait_text(page, "#banners", f"{len(failing)} 个任务采集失败")
        assert "账号或密码错误" in banner and f"等 {len(failing)} 个" in banner
        assert chip(page, "running").inner_text() == f"运行中 {running}"
        summary = page.locator("#sum-rows-per-minute").inner_text()
        assert summary == f"{1200 * running:,}"
        chip(page, "error").click()
        assert visible_ids(page) == failing
        # What the operator sees, scrolled to the tasks (cards below the screen are drawn when
        # scrolled to).
        page.locator("#tasks-title").scroll_into_view_if_needed()
        page.evaluate("() => document.querySelector('#tasks-title').scrollIntoView()")
        page.wait_for_timeout(200)
        many.browser.screenshot("200-tasks-failing", full_page=False)
        chip(page, "error").click()
        # A poll of 200 tasks renders well within the refresh interval: no task of the page's
        # main thread as long as 200 ms while two polls are rendered.
        page.evaluate(
            """() => { window.__long = [];
              new PerformanceObserver((list) => window.__long.push(
                ...list.getEntries().map((e) => e.duration))).observe({ type: "longtask" }); }"""
        )
        polls = len(answered)
        # (Waiting in Playwright: the stub answers only while Playwright is being waited on.)
        for _ in range(100):
            if len(answered) >= polls + 2:
                break
            page.wait_for_timeout(100)
        assert len(answered) >= polls + 2, "two more polls"
        page.wait_for_timeout(300)
        longest = max(page.evaluate("() => window.__long"), default=0.0)
        renders = page.evaluate(
            "() => performance.getEntriesByName('jobstream-render').map((e) => e.duration)"
        )
        print(
            f"\n200 tasks: cards shown {shown_in:.2f}s after the first answer; a poll rendered in "
            f"{renders[-1]:.0f} ms (slowest {max(renders):.0f} ms); longest task while polling "
            f"{longest:.0f} ms"
        )
        assert shown_in < 3 and renders[-1] < 200 and longest < 200
        assert many.browser.errors == []
    finally:
        page.unroute("**/status")
