"""What each alert says (Chinese, no token in it) and the body each robot type receives."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec
import pytest

from jobstream.alerts import payloads
from jobstream.alerts.conditions import Facts, Notice
from jobstream.alerts.settings import Webhook
from jobstream.alerts.texts import duration, render
from jobstream.redaction import mask_url, without_url

T0 = 1_768_444_200.0  # 2026-01-15 10:30:00 +08:00
TASK = "00f3b445-d8ec-44e8-88b2-4b971a228b1e"
ERROR = Facts(
    status="error",
    last_error="HTTP 503 from https://openapi.bazhuayu.com/data/all?token=SECRET123\nretried 3x",
    consecutive_failures=3,
    current_offset=1200,
    total=5000,
)


def notice(kind: str = "alert", condition: str = "task_error", **facts: Any) -> Notice:
    """Started at T0, decided 1 h 2 min 5 s later."""
    task = condition.startswith("task")
    return Notice(
        kind,  # type: ignore[arg-type]
        condition,  # type: ignore[arg-type]
        TASK if task else "",
        T0,
        T0 + 3725,
        replace(ERROR if task else Facts(), **facts),
    )


def test_render_task_error_says_what_failed_in_chinese() -> None:
    message = render(notice())

    assert message.title == f"【jobstream 告警】任务 {TASK} 采集失败"
    assert message.lines == (
        "错误：HTTP 503 from https://openapi.bazhuayu.com/data/all?… retried 3x",
        "连续失败：3 次",
        "进度：1200/5000（24.00%）",
        "开始时间：2026-01-15 10:30:00",
    )


def test_render_repeat_says_how_long_it_has_held() -> None:
    assert render(notice("repeat")).title.endswith("采集失败（已持续 1 小时 2 分钟）")


def test_render_task_error_recovery() -> None:
    message = render(notice("recovery", cleared_by="succeeded", status="idle"))

    assert message.title == f"【jobstream 恢复】任务 {TASK} 采集已恢复"
    assert message.lines[-1] == "持续时间：1 小时 2 分钟"
    assert message.recovery


def test_render_task_stalled_gives_offsets_and_rows_left() -> None:
    message = render(notice(condition="task_stalled", status="idle", stalled_since=T0 - 1800))

    assert message.title == f"【jobstream 告警】任务 {TASK} 已 1 小时 32 分钟没有进展"
    assert message.lines[0] == "停在 offset 1200，数据源共 5000 行，还有 3800 行未采集"
    assert message.lines[1] == "状态：等待下次采集"
    assert message.lines[-1] == "最后一次进展：2026-01-15 10:00:00"


@pytest.mark.parametrize(
    ("cleared_by", "title"),
    [
        ("progressed", f"任务 {TASK} 恢复推进"),
        ("caught_up", f"任务 {TASK} 已采集完数据源的全部数据"),
        ("stopped", f"任务 {TASK} 已被停止，无进展告警解除"),
    ],
)
def test_render_task_stalled_recovery_says_why(cleared_by: str, title: str) -> None:
    message = render(notice("recovery", "task_stalled", cleared_by=cleared_by))

    assert message.title == "【jobstream 恢复】" + title


def test_render_task_stalled_recovery_counts_from_the_last_progress() -> None:
    message = render(
        notice("recovery", "task_stalled", cleared_by="progressed", stalled_since=T0 - 1800)
    )

    assert message.lines[-1] == "无进展时长：1 小时 32 分钟"


def test_render_lag_and_broker() -> None:
    lag = render(notice(condition="consumer_lag", lag=250000, threshold=100000))
    lag_ok = render(notice("recovery", "consumer_lag", lag=12, threshold=100000))
    down = render(notice(condition="broker_down"))
    up = render(notice("recovery", "broker_down"))

    assert lag.title == "【jobstream 告警】Kafka 消费积压 250000 条"
    assert lag.lines[0] == "job_data 上的消费组积压 250000 条，超过阈值 100000 条"
    assert lag_ok.title == "【jobstream 恢复】Kafka 消费积压已回落"
    assert down.title == "【jobstream 告警】Kafka 无法连接"
    assert up.text == "【jobstream 恢复】Kafka 已恢复连接\n中断时间：1 小时 2 分钟"


def test_render_long_error_is_clipped_to_one_line() -> None:
    message = render(notice(last_error="失败\n" * 5000))

    assert len(message.lines[0]) <= len("错误：") + 300
    assert "\n" not in message.lines[0]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 秒"),
        (59, "59 秒"),
        (60, "1 分钟"),
        (3600, "1 小时"),
        (3660, "1 小时 1 分钟"),
        (86400, "1 天"),
        (97200, "1 天 3 小时"),
    ],
)
def test_duration_reads_naturally(seconds: int, text: str) -> None:
    assert duration(seconds) == text


# -- the body of each robot type ------------------------------------------------------------


def body(kind: str, n: Notice | None = None) -> dict:
    webhook = Webhook(type=kind, url="https://robot.example/hook?key=TOKEN")  # type: ignore[arg-type]
    n = n or notice()
    request = payloads.build(webhook, n, render(n), now=T0)
    assert b"TOKEN" not in request.body and b"SECRET123" not in request.body
    return msgspec.json.decode(request.body)


def test_payloads_wecom_is_a_markdown_message() -> None:
    sent = body("wecom")

    assert set(sent) == {"msgtype", "markdown"} and sent["msgtype"] == "markdown"
    content = sent["markdown"]["content"]
    assert content.startswith(
        f'<font color="warning">**【jobstream 告警】任务 {TASK} 采集失败**</font>\n> 错误：'
    )
    assert set(sent["markdown"]) == {"content"}


def test_payloads_wecom_recovery_is_green() -> None:
    sent = body("wecom", notice("recovery", cleared_by="succeeded"))

    assert sent["markdown"]["content"].startswith('<font color="info">**【jobstream 恢复】')


def test_payloads_dingtalk_is_a_markdown_message_with_a_title() -> None:
    sent = body("dingtalk")

    assert sent["msgtype"] == "markdown" and set(sent) == {"msgtype", "markdown"}
    assert sent["markdown"]["title"] == f"【jobstream 告警】任务 {TASK} 采集失败"
    assert sent["markdown"]["text"].startswith(
        f"#### 【jobstream 告警】任务 {TASK} 采集失败\n\n- 错误："
    )


def test_payloads_feishu_is_a_text_message() -> None:
    sent = body("feishu")

    assert sent == {"msg_type": "text", "content": {"text": render(notice()).text}}


def test_payloads_json_is_jobstreams_event() -> None:
    sent = body("json")

    assert sent == {
        "source": "jobstream",
        "kind": "alert",
        "condition": "task_error",
        "task_id": TASK,
        "title": f"【jobstream 告警】任务 {TASK} 采集失败",
        "text": render(notice()).text,
        "started_at": "2026-01-15T10:30:00+08:00",
        "at": "2026-01-15T11:32:05+08:00",
        "details": {
            "status": "error",
            "last_error": "HTTP 503 from https://openapi.bazhuayu.com/data/all?… retried 3x",
            "consecutive_failures": 3,
            "current_offset": 1200,
            "total": 5000,
            "stalled_since": None,
            "lag": None,
            "threshold": None,
            "cleared_by": None,
        },
    }


@pytest.mark.parametrize("kind", ["wecom", "dingtalk", "feishu"])
def test_payloads_robot_text_fits_wecoms_4096_byte_limit(kind: str) -> None:
    huge = Notice("alert", "task_error", "t" * 20_000, T0, T0, ERROR)

    sent = body(kind, huge)

    texts = [v for part in sent.values() if isinstance(part, dict) for v in part.values()]
    assert all(len(t.encode()) <= 4096 for t in texts)


def test_mask_url_keeps_scheme_and_host_only() -> None:
    assert mask_url("https://oapi.dingtalk.com/robot/send?access_token=abc") == (
        "https://oapi.dingtalk.com/…?…"
    )
    assert (
        mask_url("https://open.feishu.cn/open-apis/bot/v2/hook/abc") == "https://open.feishu.cn/…"
    )
    assert mask_url("http://user:pw@127.0.0.1:8080/") == "http://127.0.0.1:8080"


def test_without_url_replaces_the_url_in_an_error_message() -> None:
    url = "https://open.feishu.cn/open-apis/bot/v2/hook/abc123"

    text = without_url(f"Cannot connect to {url}: refused", url)

    assert "abc123" not in text and "https://open.feishu.cn/…" in text
