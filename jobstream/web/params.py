"""Parameters: parsed strictly, bounded, and refused with a 400 that says what is expected.

Each parameter an endpoint takes is declared once, as a `Param`: the endpoint reads it with
the declaration, and /openapi.json describes it from the same declaration. An endpoint may
name a shared one (`task_id`) by its name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from jobstream.config import Config
from jobstream.web.responses import HttpError, quoted

# Plain decimal integers: an optional minus, no plus, exponent or leading zeros ("+5", "1e3").
_INTEGER = re.compile(r"0|-?[1-9][0-9]{0,11}")
# Kafka allows [A-Za-z0-9._-] up to 249 characters; a shorter bound keeps names readable.
GROUP_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_GROUP = re.compile(GROUP_PATTERN)


@dataclass(frozen=True)
class Param:
    """A parameter: where it is, what it means (for the API's users: Chinese), and the
    answers other than 400 that a bad value gets."""

    name: str
    description: str
    where: Literal["query", "header"] = "query"
    refusals: Mapping[int, str] = field(default_factory=dict)

    def schema(self, config: Config) -> dict[str, Any]:
        return {"type": "string"}

    def describe(self, config: Config) -> str:
        return self.description


@dataclass(frozen=True)
class Integer(Param):
    low: int = 0
    high: int = 0
    default: int = 0

    def read(self, request: web.Request) -> int:
        return integer(request, self.name, default=self.default, low=self.low, high=self.high)

    def schema(self, config: Config) -> dict[str, Any]:
        return {
            "type": "integer",
            "minimum": self.low,
            "maximum": self.high,
            "default": self.default,
        }


@dataclass(frozen=True)
class Choice(Param):
    choices: tuple[str, ...] = ()
    default: str = ""

    def read(self, request: web.Request) -> str:
        return choice(request, self.name, self.choices, self.default)

    def schema(self, config: Config) -> dict[str, Any]:
        return {"enum": list(self.choices), "default": self.default}


@dataclass(frozen=True)
class Pattern(Param):
    """A value the endpoint parses itself; `pattern` is what it accepts."""

    pattern: str = ""

    def schema(self, config: Config) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{self.pattern}$"}


@dataclass(frozen=True)
class GroupName(Param):
    def read(self, request: web.Request, config: Config) -> str:
        return group(request, config.kafka.consumer_group)

    def schema(self, config: Config) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{GROUP_PATTERN}$"}

    def describe(self, config: Config) -> str:
        return self.description.format(
            default=config.kafka.consumer_group, prefix=f"{config.app.name}.http."
        )


@dataclass(frozen=True)
class TaskId(Param):
    def schema(self, config: Config) -> dict[str, Any]:
        return {"type": "string", "enum": list(config.api.task_ids)}

    def describe(self, config: Config) -> str:
        task_ids = config.api.task_ids
        return (
            "任务 ID；不指定时为所有任务" if len(task_ids) > 1 else f"任务 ID，默认 {task_ids[0]}"
        )


TASK_ID = TaskId("task_id", "任务 ID", refusals={404: "未配置的 task_id"})
# Parameters several endpoints take, by name.
SHARED: dict[str, Param] = {p.name: p for p in (TASK_ID,)}


def _single(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise HttpError(400, f"{name}: give it once, not {len(values)} times")
    return values[0] if values else None


def integer(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = _single(request, name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw) or not low <= int(raw) <= high:
        raise HttpError(
            400, f"{name}: expected an integer from {low} to {high}, got {quoted(raw, 40)}"
        )
    return int(raw)


def choice(request: web.Request, name: str, choices: Sequence[str], default: str) -> str:
    raw = _single(request, name)
    if raw is None:
        return default
    if raw not in choices:
        raise HttpError(400, f"{name}: expected one of {', '.join(choices)}, got {quoted(raw, 40)}")
    return raw


def group(request: web.Request, default: str) -> str:
    """A consumer group name for GET /consume (`default` when not given). A name other than
    the default one is a group of /consume's own (see `jobstream.web.readers`)."""
    raw = _single(request, "group")
    if raw is None:
        return default
    if not _GROUP.fullmatch(raw):
        raise HttpError(
            400,
            "group: expected 1 to 100 characters from A-Z a-z 0-9 . _ - "
            f"starting with a letter or digit, got {quoted(raw, 40)}",
        )
    return raw


def task_id(request: web.Request, task_ids: Sequence[str]) -> str:
    raw = _single(request, "task_id")
    if raw is None:
        return task_ids[0]
    if raw not in task_ids:
        raise HttpError(
            404, f"unknown task_id {quoted(raw, 80)}; configured: {', '.join(task_ids)}"
        )
    return raw
