"""What the operator sees is true at every moment (issue 16), in a real headless Chromium against
real workers crawling the simulator:

- a wrong password shows as 账号或密码错误 with its time and the API's own message, and once the
  password is fixed and a run succeeds, as resolved;
- the lag of each consumer group, per partition, as /kafka gives it (not the topic's total on
  every task card);
- a task's reject count opens the recent job_rejects with their reasons;
- a restart of the embedded broker (memory only) says that job_data lost what it held;
- a network cut between the worker and Kafka shows a banner within 5 s (with what is spooled,
  and since when), which clears once the network is back.

Screenshots of each state are saved under artifacts/ (dashboard-<state>.png).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.harness import (
    TASK_ID,
    Broker,
    Simulator,
    Worker,
    free_port,
    http,
    read_topic,
    wait_until,
)
from tests.integration.dashboard_page import Browser, playwright, start_browser, wait_text
from tests.proxy import Proxy

pytestmark = pytest.mark.slow

__all__ = ["playwright"]  # the fixture, used by the tests below

NAMED = "5d0c1c3e-0000-4000-8000-00000000beef"
NAME = "北京招聘"
TOTAL = 1000


@dataclass
class Stack:
    sim: Simulator
    worker: Worker
    browser: Browser

    def status(self, task_id: str) -> dict[str, Any]:
        code, body = http("GET", f"{self.worker.url}/status?task_id={task_id}")
        assert code == 200, body
        return dict(body["data"])

    def wait_status(self, predicate: Any, task_id: str, within: float = 60) -> dict[str, Any]:
        return self.worker.wait_status(predicate, timeout=within, task_id=task_id)

    def config(self) -> dict[str, Any]:
        return dict(yaml.safe_load(self.worker.config_path.read_text()))

    def set_password(self, password: str) -> None:
        config = self.config()
        config["api"]["password"] = password
        self.worker.config_path.write_text(yaml.safe_dump(config, allow_unicode=True))

    def restart(self) -> None:
        # The page is left first: its polls would fail while the worker is down.
        self.browser.page.goto("about:blank")
        self.worker.stop()
        self.worker.start()
        self.worker.wait_ready()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.config()['kafka']['embedded_port']}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, playwright: Any) -> Iterator[Stack]:
    """Two tasks (one unnamed) on the embedded broker, started with a wrong password: every
    run fails until the password is fixed (`healthy`)."""
    tmp = tmp_path_factory.mktemp("truth")
    sim = Simulator.start(
        "--rate-limit", "0", "--total", str(TOTAL), "--task-id", TASK_ID, "--task-id", NAMED
    )
    worker = Worker.configure(
        tmp,
        {
            "api": sim.api(
                password="not-the-password",
                batch_size=100,
                task_id=TASK_ID,
                tasks=[{"id": NAMED, "name": NAME}],
            ),
            "crawler": {"interval": 2},
        },
    )
    browser = None
    try:
        worker.start()
        worker.wait_ready()
        browser = start_browser(playwright, tmp / "profile", worker.url)
        found = Stack(sim, worker, browser)
        for task_id in (TASK_ID, NAMED):
            found.wait_status(lambda s: s["status"] == "error", task_id)
        yield found
    finally:
        if browser is not None:
            browser.close()
        worker.stop()
        sim.stop()


def fix_password(stack: Stack) -> None:
    """What the operator does: the right password in the config, the worker started again."""
    if stack.config()["api"]["password"] != "demo":
        stack.set_password("demo")
        stack.restart()
    for task_id in (TASK_ID, NAMED):
        stack.wait_status(
            lambda s: s["current_offset"] == s["total"] > 0 and s["status"] == "idle", task_id
        )


@pytest.fixture
def healthy(stack: Stack) -> Stack:
    fix_password(stack)
    return stack


def test_dashboard_wrong_password_then_fixed_shows_the_error_in_chinese_then_resolved(
    stack: Stack,
) -> None:
    page = stack.browser.open()
    error = stack.status(NAMED)
    assert error["error_kind"] == "credentials" and error["last_error_at"]
    card = wait_text(page, f"#tasks .task[data-task-id='{NAMED}']", "账号或密码错误")
    # The Chinese text, the time of the error and the API's own message beside it.
    assert "采集失败" in card and "Invalid.Grant" in card
    assert error["last_error"] in stack.browser.card_text(NAMED)
    banners = wait_text(page, "#banners", "2 个任务采集失败")
    assert (
        f"{NAME}（账号或密码错误）" in banners
        and "未命名任务 00f3b445（账号或密码错误）" in banners
    )
    # An unnamed task is not titled with its UUID; its id is shown beneath.
    title = page.locator(f"#tasks .task[data-task-id='{TASK_ID}'] [data-field=name]").inner_text()
    assert title == "未命名任务"
    # Nothing crawled yet: the chart's title says what it spans, its scales are whole numbers.
    chart = page.locator("#chart").get_attribute("aria-label")
    assert chart == "近 5 分钟的处理速度与积压：左轴处理速度 0–4 行/分钟，右轴积压 0–4 条"
    assert page.locator("#chart-title").inner_text() == "近 5 分钟的处理速度与积压"
    stack.browser.screenshot("failing")

    fix_password(stack)
    fixed = stack.status(NAMED)
    assert fixed["last_error"] is None and fixed["resolved_error"] == error["last_error"]
    # The last of the failed runs (they went on every 2 s until the worker stopped).
    assert error["last_error_at"] <= fixed["resolved_error_at"] < fixed["resolved_at"]
    page = stack.browser.open()
    text = wait_text(page, f"#tasks .task[data-task-id='{NAMED}']", "已解决")
    assert "账号或密码错误" in text and "恢复" in text
    # The original message is kept, folded under 原始信息.
    original = page.locator(f"#tasks .task[data-task-id='{NAMED}'] [data-field=resolved_error]")
    assert original.text_content() == error["last_error"]
    assert "采集失败" not in text
    assert page.locator(f"#tasks .task[data-task-id='{NAMED}'] [data-field=error-box]").is_hidden()
    assert "采集失败" not in stack.browser.banners()
    stack.browser.screenshot("resolved")
    assert stack.browser.errors == [] and stack.browser.outside == []


def groups_shown(page: Any) -> dict[str, list[str]]:
    return dict(
        page.evaluate(
            """() => Object.fromEntries(Array.from(document.querySelectorAll('#groups-body tr'))
            .map((tr) => [tr.dataset.group,
                          Array.from(tr.querySelectorAll('td')).map((td) => td.textContent)]))"""
        )
    )


def test_dashboard_lag_per_consumer_group_and_partition(healthy: Stack) -> None:
    url = healthy.worker.url
    for group, size in (("dash-a", 100), ("dash-b", 30)):
        code, body = http("GET", f"{url}/consume?group={group}&batch_size={size}", timeout=30)
        assert code == 200 and body["count"] == size, body
    page = healthy.browser.open()

    def matches() -> Any:
        with page.expect_response(lambda r: urlsplit(r.url).path == "/kafka") as answer:
            pass
        data = answer.value.json()["data"]
        try:
            page.wait_for_timeout(300)  # rendered right after the answer
        except Exception:
            return None
        shown = groups_shown(page)
        partitions = sorted(data["end_offsets"], key=int)
        expected = {
            g["group"]: [f"{g['lag']:,}", *(f"{g['lag_by_partition'][p]:,}" for p in partitions)]
            for g in data["groups"]
        }
        named = {name.rpartition(".http.")[2] for name in shown}
        return shown == expected and {"dash-a", "dash-b"} <= named and data

    data = wait_until(matches, 20, "the page showing the groups /kafka gave")
    # /consume's group=<name> is the Kafka group <app.name>.http.<name>, listed as Kafka has it.
    prefix = f"{healthy.config()['app']['name']}.http."
    messages = sum(data["end_offsets"].values())
    lags = {g["group"]: g for g in data["groups"]}
    assert data["groups"][0]["group"] == "job_consumer_group" and data["groups"][0]["default"]
    assert lags[f"{prefix}dash-a"]["lag"] == messages - 100
    assert lags[f"{prefix}dash-b"]["lag"] == messages - 30
    assert "默认（/consume）" in page.locator("#groups-body").inner_text()
    # The topic's lag is no longer repeated on every task card.
    assert "积压" not in healthy.browser.card_text(NAMED)
    assert healthy.browser.errors == []


def test_dashboard_reject_count_opens_the_rejects_with_their_reasons(healthy: Stack) -> None:
    # In a thread of its own: Playwright's sync API runs an event loop in this one.
    with ThreadPoolExecutor(1) as thread:
        reading = read_topic(healthy.bootstrap, "job_rejects", idle=2)
        rejects = thread.submit(asyncio.run, reading).result()
    mine = {
        value["source_offset"]: value["reason"] for _, value in rejects if value["task_id"] == NAMED
    }
    rejected = healthy.status(NAMED)["rows"]["rejected"]
    assert mine and len(mine) == rejected
    page = healthy.browser.open()
    card = healthy.browser.card(NAMED)
    wait_until(
        lambda: card.locator("[data-field=rejected]").inner_text() == f"{rejected:,}", 10,
        "the reject count",
    )  # fmt: skip
    card.locator("[data-field=rejected]").click()
    state = wait_text(page, "#messages-state", "最新的")
    assert "job_rejects" in state and NAME in state
    rows = page.evaluate(
        """() => Array.from(document.querySelectorAll('#messages-body tr'))
        .map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent))"""
    )
    assert len(rows) == min(20, len(mine)), rows
    for _time, task, offset, field, reason, raw in rows:
        assert task == NAME
        assert reason == mine[int(offset)], (offset, reason)
        assert field and raw
    offsets = [int(row[2]) for row in rows]
    assert len(set(offsets)) == len(rows) and max(mine) in offsets
    # Newest first (by the time each was written to job_rejects).
    times = [row[0] for row in rows]
    assert times == sorted(times, reverse=True)
    healthy.browser.screenshot("rejects")
    assert healthy.browser.errors == []


def test_dashboard_healthy_state_has_no_banner(healthy: Stack) -> None:
    page = healthy.browser.open()
    page.wait_for_function(
        "() => document.querySelector('#kafka-state').textContent === 'Kafka 正常'"
    )
    wait_until(lambda: healthy.browser.banners() == "", 10, "no banner")
    assert healthy.browser.errors == []


def test_dashboard_source_reset_shown_on_the_card(healthy: Stack) -> None:
    """The source's data cleared and collected again (fewer rows than were applied): the crawl
    starts over from 0, and the card says so, with when."""
    page = healthy.browser.open()
    healthy.sim.reset(TOTAL // 2, seed=7, task_id=NAMED)
    after = healthy.wait_status(
        lambda s: s["source_resets"] == 1 and s["current_offset"] == TOTAL // 2, NAMED
    )
    card = wait_text(page, f"#tasks .task[data-task-id='{NAMED}']", "数据源重置 1 次")
    assert "从 offset 0 重新采集" in card and "游标异常 1 次" in card and "source reset" in card
    assert after["last_reset_at"] and after["last_reset_at"] in after["last_anomaly"]
    assert "数据源重置" not in healthy.browser.card_text(TASK_ID)
    assert healthy.browser.errors == []


def test_dashboard_embedded_broker_restart_says_job_data_lost_its_messages(healthy: Stack) -> None:
    published = sum(healthy.status(t)["rows"]["published"] for t in (TASK_ID, NAMED))
    rejected = sum(healthy.status(t)["rows"]["rejected"] for t in (TASK_ID, NAMED))
    assert published > 0
    healthy.restart()
    page = healthy.browser.open()
    banner = wait_text(page, "#banners", "内置 broker 已重启", within=15)
    assert f"{published:,} 条消息" in banner and f"job_rejects 中的 {rejected:,} 条" in banner
    assert "只在内存中保存数据" in banner and "SQLite 镜像" in banner
    _, body = http("GET", f"{healthy.worker.url}/kafka")
    [loss] = body["data"]["losses"]
    assert (loss["kind"], loss["messages"], loss["rejects"]) == (
        "embedded_restart", published, rejected,
    )  # fmt: skip
    healthy.browser.screenshot("broker-restarted")
    assert healthy.browser.errors == []


# -- Kafka cut off ----------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_dashboard_kafka_cut_shows_a_banner_within_5s_and_clears_after(
    tmp_path: Path, playwright: Any
) -> None:
    """The network between the worker and Kafka is cut mid-crawl (tests/proxy.py): the page
    says so within 5 s, with the spool growing and since when, and says nothing once the
    network is back and the spool drained."""
    rows = 6000
    proxy_port = free_port()
    broker = Broker.start(advertised_port=proxy_port)
    proxy = Proxy(broker.port, proxy_port).start()
    sim = Simulator.start("--rate-limit", "0", "--total", str(rows))
    worker = Worker.configure(
        tmp_path,
        {
            # 4 pages of 100 rows a second: a crawl of several seconds, cut in its middle.
            "api": sim.api(batch_size=100, max_requests_per_second=4, max_pages_in_flight=2),
            "kafka": {"bootstrap_servers": f"127.0.0.1:{proxy_port}"},
            "crawler": {"interval": 3600},
        },
    )
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(broker.stop)
        cleanup.callback(proxy.stop)
        cleanup.callback(sim.stop)
        cleanup.callback(worker.stop)
        worker.start()
        worker.wait_ready()
        browser = start_browser(playwright, tmp_path / "profile", worker.url)
        cleanup.callback(browser.close)
        page = browser.open()
        page.wait_for_function(
            "() => document.querySelector('#kafka-state').textContent === 'Kafka 正常'"
        )
        worker.wait_status(lambda s: s["current_offset"] >= 600, timeout=60)
        wait_until(lambda: browser.banners() == "", 10, "no banner while all is well")
        page.wait_for_timeout(2500)  # a poll more: the chart has points of the crawl
        browser.screenshot("normal")

        proxy.cut()
        cut_at = time.monotonic()
        banner = wait_text(page, "#banners", "Kafka 不可达", within=5)
        shown_after = time.monotonic() - cut_at
        assert re.search(r"自 \d{1,2}:\d{2}:\d{2} 起连不上 Kafka", banner), banner
        assert page.locator("#kafka-state").inner_text() == "Kafka 不可达"
        # The run goes on fetching into the spool: the banner says how much is there.
        spooled = wait_until(
            lambda: re.search(r"暂存在本地：([1-9][\d,]*) 页、([1-9][\d,]*) 行", browser.banners()),
            30,
            "the spool shown",
        )
        status = worker.status()
        assert status["kafka_reachable"] is False and status["kafka_unreachable_since"]
        assert status["spool"]["pages"] >= int(spooled.group(1).replace(",", "")) > 0
        browser.screenshot("kafka-down")

        proxy.restore()
        restored_at = time.monotonic()
        page.wait_for_function(
            "() => !document.querySelector('#banners').innerText.includes('Kafka 不可达')",
            timeout=30_000,
        )
        cleared_after = time.monotonic() - restored_at
        page.wait_for_function(
            "() => document.querySelector('#kafka-state').textContent === 'Kafka 正常'"
        )
        worker.wait_status(
            lambda s: s["current_offset"] == rows and s["spool"]["pages"] == 0, timeout=120
        )
        wait_until(lambda: browser.banners() == "", 20, "every banner gone once drained")
        print(
            f"\nKafka cut: banner shown {shown_after:.1f}s after the cut, gone "
            f"{cleared_after:.1f}s after the network was back"
        )
        assert shown_after < 5
        assert browser.errors == [] and browser.outside == []
