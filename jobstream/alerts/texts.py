"""What each alert says, in Chinese: a title and a few lines, the same for every robot.

Text that comes from elsewhere (a task's last error) is put on one line, clipped, and any URL
query in it masked: a message never carries a token.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime, tzinfo

from jobstream.alerts.conditions import Facts, Notice
from jobstream.redaction import hide_queries, scrub

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
ALERT_TAG = "【jobstream 告警】"
RECOVERY_TAG = "【jobstream 恢复】"
ERROR_CHARS = 300

_STATUS = {"idle": "等待下次采集", "running": "采集中", "stopped": "已停止", "error": "出错"}


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    lines: tuple[str, ...]
    recovery: bool = False

    @property
    def text(self) -> str:
        """Title and lines as plain text, one per line."""
        return "\n".join((self.title, *self.lines))


def render(notice: Notice, tz: tzinfo = SHANGHAI) -> Message:
    if notice.kind == "recovery":
        title, lines = _recovery(notice, tz)
        return Message(RECOVERY_TAG + title, tuple(lines), recovery=True)
    title, lines = _alert(notice, tz)
    if notice.kind == "repeat":
        title += f"（已持续 {duration(notice.at - notice.started_at)}）"
    return Message(ALERT_TAG + title, tuple(lines))


def _alert(notice: Notice, tz: tzinfo) -> tuple[str, list[str]]:
    facts, task = notice.facts, notice.task_id
    since = f"开始时间：{when(notice.started_at, tz)}"
    if notice.condition == "task_error":
        return f"任务 {task} 采集失败", [
            f"错误：{error_text(facts.last_error) or '未知错误'}",
            f"连续失败：{facts.consecutive_failures} 次",
            _progress(facts),
            since,
        ]
    if notice.condition == "task_stalled":
        stalled_since = facts.stalled_since if facts.stalled_since is not None else notice.at
        lines = [
            f"停在 offset {facts.current_offset}，数据源共 {facts.total} 行，"
            f"还有 {max(0, facts.total - facts.current_offset)} 行未采集",
            f"状态：{_STATUS.get(facts.status, facts.status)}",
        ]
        if facts.last_error:
            lines.append(f"最近错误：{error_text(facts.last_error)}")
        lines.append(f"最后一次进展：{when(stalled_since, tz)}")
        return f"任务 {task} 已 {duration(notice.at - stalled_since)}没有进展", lines
    if notice.condition == "consumer_lag":
        return f"Kafka 消费积压 {facts.lag} 条", [
            f"job_data 上的消费组积压 {facts.lag} 条，超过阈值 {facts.threshold} 条",
            since,
        ]
    return "Kafka 无法连接", ["worker 连不上 Kafka broker", since]


def _recovery(notice: Notice, tz: tzinfo) -> tuple[str, list[str]]:
    facts, task = notice.facts, notice.task_id
    lasted = f"持续时间：{duration(notice.at - notice.started_at)}"
    if notice.condition in ("task_error", "task_stalled"):
        what = "采集失败" if notice.condition == "task_error" else "无进展"
        titles = {
            "stopped": f"任务 {task} 已被停止，{what}告警解除",
            "caught_up": f"任务 {task} 已采集完数据源的全部数据",
            "progressed": f"任务 {task} 恢复推进",
        }
        title = titles.get(facts.cleared_by, f"任务 {task} 采集已恢复")
        if notice.condition == "task_stalled" and facts.stalled_since is not None:
            lasted = f"无进展时长：{duration(notice.at - facts.stalled_since)}"
        return title, [_progress(facts), lasted]
    if notice.condition == "consumer_lag":
        return "Kafka 消费积压已回落", [
            f"当前积压 {facts.lag} 条，阈值 {facts.threshold} 条",
            lasted,
        ]
    return "Kafka 已恢复连接", [f"中断时间：{duration(notice.at - notice.started_at)}"]


def _progress(facts: Facts) -> str:
    if facts.total <= 0:
        return f"进度：offset {facts.current_offset}"
    percent = min(facts.current_offset / facts.total, 1.0) * 100
    return f"进度：{facts.current_offset}/{facts.total}（{percent:.2f}%）"


def error_text(text: str) -> str:
    """A task's last error as one masked, clipped line."""
    return hide_queries(scrub(text, ERROR_CHARS))


def when(epoch: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float) -> str:
    """`45 秒`, `12 分钟`, `2 小时 5 分钟`, `1 天 3 小时`."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} 秒"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} 分钟"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} 小时" + (f" {minutes} 分钟" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} 天" + (f" {hours} 小时" if hours else "")
