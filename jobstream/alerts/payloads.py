"""The HTTP request each kind of webhook receives for one message.

- wecom (企业微信群机器人, work.weixin.qq.com/api/doc/90000/90136/91770 群机器人配置说明):
  `{"msgtype": "markdown", "markdown": {"content": ...}}`, content at most 4096 bytes of UTF-8;
  `<font color="warning|info">` is WeCom's own markdown extension.
- dingtalk (钉钉自定义机器人, open.dingtalk.com custom robot message types):
  `{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}}`; `title` is what the
  notification preview shows. With a secret, `timestamp` and `sign` are added to the query.
- feishu (飞书自定义机器人, open.feishu.cn 自定义机器人使用指南):
  `{"msg_type": "text", "content": {"text": ...}}`, body at most 20 KB; with a secret,
  `timestamp` and `sign` fields in the body.
- json: `AlertEvent` below; with a secret, the `X-Jobstream-Timestamp` and
  `X-Jobstream-Signature` headers (see `signing.json_signature`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import quote_plus

import msgspec

from jobstream.alerts import signing
from jobstream.alerts.conditions import Condition, Notice, NoticeKind
from jobstream.alerts.settings import Webhook
from jobstream.alerts.texts import SHANGHAI, Message, error_text

# WeCom's markdown limit (4096 bytes) with room to spare; the others allow more.
MAX_CONTENT_BYTES = 4000
TITLE_BYTES = 512  # DingTalk's notification preview
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


class AlertDetails(msgspec.Struct, frozen=True, kw_only=True):
    """The snapshot's values behind a message; fields that do not apply are null."""

    status: str | None = None
    last_error: str | None = None
    consecutive_failures: int | None = None
    current_offset: int | None = None
    total: int | None = None
    stalled_since: str | None = None
    lag: int | None = None
    threshold: int | None = None
    cleared_by: str | None = None


class AlertEvent(msgspec.Struct, frozen=True, kw_only=True):
    """What a `json` webhook receives."""

    source: str = "jobstream"
    kind: NoticeKind  # alert, repeat (a reminder while it holds), recovery
    condition: Condition  # task_error, task_stalled, consumer_lag, broker_down
    task_id: str | None  # null for consumer_lag and broker_down
    title: str
    text: str
    started_at: str  # ISO 8601 with offset: when the condition started
    at: str  # when this message was decided
    details: AlertDetails


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


_ENCODER = msgspec.json.Encoder()


def build(
    webhook: Webhook, notice: Notice, message: Message, now: float, tz: tzinfo = SHANGHAI
) -> Request:
    """The request to send `message` to `webhook`, signed at `now` (epoch seconds)."""
    if webhook.type == "wecom":
        return _post(webhook.url, wecom_body(message))
    if webhook.type == "dingtalk":
        url = webhook.url
        if webhook.secret:
            timestamp = int(now * 1000)
            sign = quote_plus(signing.dingtalk_sign(webhook.secret, timestamp))
            url += ("&" if "?" in url else "?") + f"timestamp={timestamp}&sign={sign}"
        return _post(url, dingtalk_body(message))
    if webhook.type == "feishu":
        body = feishu_body(message)
        if webhook.secret:
            timestamp = int(now)
            body = {
                "timestamp": str(timestamp),
                "sign": signing.feishu_sign(webhook.secret, timestamp),
                **body,
            }
        return _post(webhook.url, body)
    encoded = _ENCODER.encode(json_event(notice, message, tz))
    headers = dict(JSON_HEADERS)
    if webhook.secret:
        timestamp = int(now)
        headers[signing.JSON_TIMESTAMP_HEADER] = str(timestamp)
        headers[signing.JSON_SIGNATURE_HEADER] = signing.json_signature(
            webhook.secret, timestamp, encoded
        )
    return Request(webhook.url, encoded, headers)


def wecom_body(message: Message) -> dict[str, Any]:
    color = "info" if message.recovery else "warning"
    content = f'<font color="{color}">**{message.title}**</font>\n' + "\n".join(
        f"> {line}" for line in message.lines
    )
    return {"msgtype": "markdown", "markdown": {"content": _fit(content)}}


def dingtalk_body(message: Message) -> dict[str, Any]:
    # DingTalk's markdown needs a blank line to break a line.
    text = f"#### {message.title}\n\n" + "\n\n".join(f"- {line}" for line in message.lines)
    title = _fit(message.title, TITLE_BYTES)
    return {"msgtype": "markdown", "markdown": {"title": title, "text": _fit(text)}}


def feishu_body(message: Message) -> dict[str, Any]:
    return {"msg_type": "text", "content": {"text": _fit(message.text)}}


def json_event(notice: Notice, message: Message, tz: tzinfo = SHANGHAI) -> AlertEvent:
    facts = notice.facts
    task = notice.condition in ("task_error", "task_stalled")
    lag = notice.condition == "consumer_lag"
    details = AlertDetails(
        status=facts.status if task else None,
        last_error=error_text(facts.last_error) if task else None,
        consecutive_failures=facts.consecutive_failures if task else None,
        current_offset=facts.current_offset if task else None,
        total=facts.total if task else None,
        stalled_since=_iso(facts.stalled_since, tz) if facts.stalled_since else None,
        lag=facts.lag if lag else None,
        threshold=facts.threshold if lag else None,
        cleared_by=facts.cleared_by or None,
    )
    return AlertEvent(
        kind=notice.kind,
        condition=notice.condition,
        task_id=notice.task_id or None,
        title=message.title,
        text=message.text,
        started_at=_iso(notice.started_at, tz),
        at=_iso(notice.at, tz),
        details=details,
    )


def _post(url: str, body: dict[str, Any]) -> Request:
    return Request(url, _ENCODER.encode(body), dict(JSON_HEADERS))


def _fit(text: str, limit: int = MAX_CONTENT_BYTES) -> str:
    """At most `limit` bytes of UTF-8, cut at a character."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "…"


def _iso(epoch: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(epoch, tz).isoformat(timespec="seconds")
