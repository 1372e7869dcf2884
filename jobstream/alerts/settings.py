"""The `alerts` config section: where alerts go and when they fire, declared once.

Each field carries its constraint (`msgspec.Meta`); `load_alerts` converts the YAML mapping and
turns msgspec's complaint into one line that names the key, e.g.
`alerts.webhooks[1].type: expected one of wecom, dingtalk, feishu, json, got 'slack'`.
Webhook URLs hold the robots' access tokens and `secret` the signing keys: neither appears in a
repr nor in an error message.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
import msgspec.inspect as mi

from jobstream.alerts.redact import mask_url
from jobstream.errors import ConfigError

WebhookType = Literal["wecom", "dingtalk", "feishu", "json"]
"""wecom: 企业微信群机器人; dingtalk: 钉钉自定义机器人; feishu: 飞书自定义机器人;
json: any HTTP endpoint that takes jobstream's own JSON (see `jobstream.alerts.payloads`)."""

WEBHOOK_TYPES: tuple[str, ...] = typing.get_args(WebhookType)
_ORDER: dict[object, int] = {name: i for i, name in enumerate(WEBHOOK_TYPES)}

_SECRET = {"secret": True}
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[^/\s?#]+\S*$", extra=_SECRET)]
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
            raise ValueError("secret: WeCom group robots have no signing secret; remove it")

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
    no_progress_minutes: Annotated[float, msgspec.Meta(ge=1, le=7 * 24 * 60)] = 30.0
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


def load_alerts(raw: Mapping[str, Any] | None) -> AlertSettings:
    """The section from its YAML mapping (None: the defaults). Raises ConfigError naming the key.

    Lax like the rest of the config: numbers may come as text ("30") from the environment."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError("alerts: must be a mapping")
    try:
        return msgspec.convert(dict(raw), AlertSettings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_problem(str(exc), raw)) from None


# -- from msgspec's complaint to one line naming the key ------------------------------------

_UNKNOWN = re.compile(r"Object contains unknown field `(?P<name>.+)`")
_MISSING = re.compile(r"Object missing required field `(?P<name>.+)`")
_WRONG_TYPE = re.compile(r"Expected `(?P<expected>\w+)`.*, got `\w+`")
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")
_KINDS = {
    "int": "an integer",
    "float": "a number",
    "str": "text",
    "bool": "true or false",
    "array": "a list",
    "object": "a mapping",
}


def _problem(message: str, raw: Mapping[str, Any]) -> str:
    what, at, where = message.rpartition(" - at `$")
    if not at:
        what, where = message, "`"
    path = where.rstrip("`")
    key = "alerts" + path
    if found := _UNKNOWN.fullmatch(what):
        return f"{key}.{found['name']}: unknown key"
    if found := _MISSING.fullmatch(what):
        return f"{key}.{found['name']}: required"
    steps: list[str | int] = [name or int(index) for name, index in _STEP.findall(path)]
    info, secret = _type_at(steps)
    shown = _shown(_value_at(raw, steps), secret)
    if found := _WRONG_TYPE.fullmatch(what):
        return f"{key}: expected {_KINDS.get(found['expected'], found['expected'])}, got {shown}"
    if info is None or isinstance(info, mi.StructType):
        # Raised by a struct's own check (__post_init__), which starts with the field's name.
        return f"{key}.{what}"
    return f"{key}: {_rule(info)}, got {shown}"


def _rule(info: mi.Type) -> str:
    """What a field accepts, in words, from its declaration."""
    if isinstance(info, mi.LiteralType):
        # In the declared order (msgspec sorts them).
        values = sorted(info.values, key=lambda v: _ORDER.get(v, len(_ORDER)))
        return "expected one of " + ", ".join(str(v) for v in values)
    if isinstance(info, mi.StrType) and info.pattern:
        return "expected an http(s) URL with a host"
    low = getattr(info, "ge", None)
    high = getattr(info, "le", None)
    above = getattr(info, "gt", None)
    if low is not None and high is not None:
        return f"must be between {_number(low)} and {_number(high)}"
    if low is not None:
        return f"must be at least {_number(low)}"
    if above is not None:
        limit = f" and at most {_number(high)}" if high is not None else ""
        return f"must be above {_number(above)}{limit}"
    return "invalid value"


def _type_at(steps: list[str | int]) -> tuple[mi.Type | None, bool]:
    """The declared type at `steps` inside AlertSettings, and whether it holds a secret."""
    info: mi.Type = mi.type_info(AlertSettings)
    for step in steps:
        if isinstance(info, mi.Metadata):
            info = info.type
        if isinstance(step, int) and isinstance(info, mi.VarTupleType | mi.ListType):
            info = info.item_type
        elif isinstance(step, str) and isinstance(info, mi.StructType):
            fields = {f.name: f for f in info.fields}
            if step not in fields:
                return None, False
            info = fields[step].type
        else:
            return None, False
    if isinstance(info, mi.Metadata):
        return info.type, bool((info.extra or {}).get("secret"))
    return info, False


def _value_at(raw: Any, steps: list[str | int]) -> Any:
    for step in steps:
        try:
            raw = raw[step]
        except (KeyError, IndexError, TypeError):
            return None
    return raw


def _shown(value: Any, secret: bool) -> str:
    if not secret:
        return f"{value!r:.60}"
    return repr(mask_url(value)) if isinstance(value, str) and "://" in value else "***"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
