"""The dashboard's trace in a real headless Chromium against a real worker crawling the
simulator: a posting's URL pasted in the trace box shows its fate in words (where job_data
holds it, as /trace and job_data say), an id of a filtered row shows which date and cutoff
decided, and a task's 例子 links list recent rows of that fate, each with its trace."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from tests.harness import TASK_ID, Simulator, Worker, http, read_topic
from tests.integration.dashboard_page import Browser, playwright, start_browser, wait_text
from tests.integration.truth import expected, settled

pytestmark = pytest.mark.slow

__all__ = ["playwright"]  # the fixture, used by the tests below

TOTAL = 600


@dataclass
class Stack:
    sim: Simulator
    worker: Worker
    browser: Browser
    truths: list[dict[str, Any]]

    def trace(self, **query: Any) -> dict[str, Any]:
        text = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())
        code, body = http("GET", f"{self.worker.url}/trace?{text}")
        assert code == 200, body
        return dict(body["data"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, playwright: Any) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("trace")
    sim = Simulator.start(
        "--rate-limit", "0", "--total", str(TOTAL), "--task-id", TASK_ID,
        "--repeat-ratio", "0.3", "--hostile-ratio", "0.05",
    )  # fmt: skip
    worker = Worker.configure(
        tmp, {"api": sim.api(batch_size=100, task_id=TASK_ID), "crawler": {"interval": 3600}}
    )
    browser = None
    try:
        worker.start()
        worker.wait_ready()
        worker.wait_status(
            lambda s: s["current_offset"] == TOTAL and settled(s), timeout=90, task_id=TASK_ID
        )
        browser = start_browser(playwright, tmp / "profile", worker.url)
        yield Stack(sim, worker, browser, sim.truth())
    finally:
        if browser is not None:
            browser.close()
        worker.stop()
        sim.stop()


def job_data(stack: Stack) -> dict[tuple[int, int], dict[str, Any]]:
    # In a thread of its own: Playwright's sync API runs an event loop in this one.
    config = yaml.safe_load(stack.worker.config_path.read_text())
    bootstrap = f"127.0.0.1:{config['kafka']['embedded_port']}"
    with ThreadPoolExecutor(1) as thread:
        reading = read_topic(bootstrap, "job_data", raw=True, idle=2)
        messages = thread.submit(asyncio.run, reading).result()
    return {(m.partition, m.offset): json.loads(m.value) for m in messages}


def lines_of(page: Any, selector: str) -> list[dict[str, str]]:
    return list(
        page.evaluate(
            """(selector) => Array.from(document.querySelectorAll(selector + ' li')).map((li) =>
            ({fate: li.dataset.fate, text: li.innerText}))""",
            selector,
        )
    )


def test_dashboard_trace_box_pasted_url_shows_where_job_data_holds_it(stack: Stack) -> None:
    want = expected(stack.truths)
    postings = Counter(t["posting"] for t in stack.truths)
    offset = next(
        o for o in sorted(want.published)
        if postings[want.truths[o]["posting"]] == 1 and want.truths[o]["url"]
    )  # fmt: skip
    url = want.truths[offset]["url"]
    told = stack.trace(url=url)
    (sighting,) = told["sightings"]
    assert sighting["fate"] == "published" and sighting["offset"] == offset, told
    where = sighting["published"]
    job = job_data(stack)[(where["partition"], where["offset"])]
    assert (job["source_offset"], job["id"]) == (offset, told["id"])

    page = stack.browser.open()
    page.fill("#trace-input", url)
    page.click("#trace-go")
    shown = wait_text(page, "#trace-result", "已发布")
    assert told["id"] in shown
    (line,) = lines_of(page, "#trace-result")
    assert line["fate"] == "published"
    assert f"job_data 分区 {where['partition']}，offset {where['offset']}" in line["text"]
    assert f"的源 offset {offset}（采集" in line["text"]
    stack.browser.screenshot("trace-published")
    assert stack.browser.errors == [] and stack.browser.outside == []


def test_dashboard_trace_box_id_of_a_filtered_row_says_which_date_and_cutoff(
    stack: Stack,
) -> None:
    want = expected(stack.truths)
    offset = min(want.filtered)
    by_offset = stack.trace(task_id=TASK_ID, offset=offset)
    mine = [s for s in by_offset["sightings"] if s["offset"] == offset]
    assert mine[0]["fate"] == "filtered", by_offset
    detail = mine[0]["filtered"]
    page = stack.browser.open()
    page.fill("#trace-input", by_offset["id"].upper())
    page.click("#trace-go")
    wait_text(page, "#trace-result", "被过滤")
    texts = [line["text"] for line in lines_of(page, "#trace-result") if line["fate"] == "filtered"]
    assert any(
        f"早于截止日 {detail['cutoff']}（过滤天数 7）" in text and f"源 offset {offset}（" in text
        for text in texts
    ), texts
    assert stack.browser.errors == []


def test_dashboard_trace_unknown_url_says_not_seen(stack: Stack) -> None:
    page = stack.browser.open()
    page.fill("#trace-input", "https://jobs.example.com/never-crawled")
    page.click("#trace-go")
    shown = wait_text(page, "#trace-result", "没有找到")
    assert "保留期内没有见过这个职位" in shown
    assert stack.browser.errors == []


@pytest.mark.parametrize(
    ("fate", "word"),
    [("published", "已发布"), ("filtered", "被过滤"), ("rejected", "被拒绝"),
     ("duplicate", "重复，未发布")],
)  # fmt: skip
def test_dashboard_count_examples_each_a_row_of_that_fate_with_its_trace(
    stack: Stack, fate: str, word: str
) -> None:
    want = expected(stack.truths)
    of_fate = {"published": want.published, "filtered": want.filtered,
               "rejected": want.rejected, "duplicate": want.published}[fate]  # fmt: skip
    page = stack.browser.open()
    card = stack.browser.card(TASK_ID)
    card.locator(f"[data-action=examples-{fate}]").click()
    state = wait_text(page, "#examples-state", "共")
    assert "共 10 个例子" in state, state
    answers = page.locator("#examples .trace-answer")
    assert answers.count() == 10
    offsets = []
    for index in range(10):
        box = answers.nth(index)
        heading = box.locator("h4").inner_text()
        found = re.match(r"源 offset (\d+)（", heading)
        assert found, heading
        offset = int(found[1])
        offsets.append(offset)
        assert offset in of_fate, (fate, offset)
        # The row's newest entry is of that fate, in words, as /trace by offset says.
        line = box.locator(f"li[data-offset='{offset}']").first
        assert line.get_attribute("data-fate") == fate and word in line.inner_text()
        told = stack.trace(task_id=TASK_ID, offset=offset)
        mine = [s for s in told["sightings"] if s["offset"] == offset]
        assert mine[0]["fate"] == fate, told
    assert offsets == sorted(offsets, reverse=True), offsets
    assert stack.browser.errors == []
