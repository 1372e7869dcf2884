"""The `alerts` config section: where alerts go and when they fire, declared once.

Each field carries its constraint (`msgspec.Meta`); `jobstream.config` loads the section with
the others and names the key of a bad value, e.g.
`alerts.webhooks[1].type: expected one of wecom, dingtalk, feishu, json, got 'slack'`.
Webhook URLs hold the robots' access tokens and `secret` the signing keys: neither appears in a
repr nor in an error message.
"""

from __future__ import annotations

import typing
from typing import Annotated, Literal

import msgspec

from jobstream.config_problems import InvalidSetting
from jobstream.redaction import mask_url

WebhookType = Literal["wecom", "dingtalk", "feishu", "json"]
"""wecom: 企业微信群机器人; dingtalk: 钉钉自定义机器人; feishu: 飞书自定义机器人;
json: any HTTP endpoint that takes jobstream's own JSON (see `jobstream.alerts.payloads`)."""

WEBHOOK_TYPES: tuple[str, ...] = typing.get_args(WebhookType)

_SECRET = {"secret": True}
Url = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^https?://[^/\s?#]+\S*$",
        description="expected an http(s) URL with a host",
        extra=_SECRET,
    ),
]
Secret = Annotated[str, msgspec.Meta(extra=_SECRET)]


class Webhook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One target. `secret` is the robot's signing key (DingTalk 加签, Feishu 签名校验) or, for
    `json`, the key of an HMAC-SHA256 signature header; WeCom robots have none."""

    type: WebhookType
    url: Url
    secret: Secret = ""
    # Shown in logs instead of the URL; defaults to the type and the URL's host.
    name: str = ""

    def __post_init__(self) -> None:
        if self.type == "wecom" and self.secret:
            raise InvalidSetting("WeCom group robots have no signing secret; remove it", "secret")

    @property
    def label(self) -> str:
        return self.name or f"{self.type} {mask_url(self.url)}"

    def __repr__(self) -> str:
        secret = ", secret='***'" if self.secret else ""
        url = mask_url(self.url)
        return f"Webhook(type={self.type!r}, url={url!r}{secret}, name={self.name!r})"


class AlertSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `alerts` section. With no webhooks, nothing is checked or sent."""

    webhooks: tuple[Webhook, ...] = ()
    # A task that has rows left but has not advanced for this long is reported as stalled.
    no_progress_minutes: Annotated[float, msgspec.Meta(ge=0.05, le=7 * 24 * 60)] = 30.0
    # Consumer lag on job_data (messages) above which an alert fires; 0 turns the check off.
    lag_threshold: Annotated[int, msgspec.Meta(ge=0)] = 100_000
    # Seconds between two looks at the worker's state.
    check_interval: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 15.0
    # While a condition holds, remind every this many seconds; 0 sends one alert only.
    repeat_after: Annotated[float, msgspec.Meta(ge=0)] = 4 * 3600.0
    # Messages (each to every webhook) at most per minute; the robots allow 20 (DingTalk, WeCom).
    max_per_minute: Annotated[int, msgspec.Meta(ge=1, le=60)] = 10
    # Per delivery attempt, and attempts per message and webhook.
    timeout: Annotated[float, msgspec.Meta(gt=0, le=60)] = 10.0
    attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3

    @property
    def enabled(self) -> bool:
        return bool(self.webhooks)
