"""Query parameters: parsed strictly, bounded, and refused with a 400 that says what is expected."""

from __future__ import annotations

import re
from collections.abc import Sequence

from aiohttp import web

from jobstream.web.responses import HttpError, quoted

# Plain decimal integers: an optional minus, no plus, exponent or leading zeros ("+5", "1e3").
_INTEGER = re.compile(r"0|-?[1-9][0-9]{0,11}")
# Kafka allows [A-Za-z0-9._-] up to 249 characters; a shorter bound keeps names readable.
_GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


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
