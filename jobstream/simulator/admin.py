"""`/_sim/*`: what tests and benchmarks use to steer the simulator from outside its process."""

import dataclasses
import json
from typing import Any

from aiohttp import web

from jobstream.simulator.api import STATE


class _BadRequest(ValueError):
    pass


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        raise _BadRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _BadRequest("body must be a JSON object")
    return body


def _bad(message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": "Invalid.Parameter", "message": message}}, status=400
    )


def _number(body: dict[str, Any], key: str) -> float:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _BadRequest(f"{key} must be a number >= 0, got {value!r}")
    return float(value)


def _count(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _BadRequest(f"{key} must be an integer >= 0, got {value!r}")
    return value


async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    totals = {task_id: task.total for task_id, task in state.tasks.items()}
    return web.json_response({**state.stats.to_json(), "totals": totals})


async def reset_stats(request: web.Request) -> web.Response:
    request.app[STATE].stats.reset()
    return web.json_response({"ok": True})


async def grow(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = await _json_body(request)
        n = _count(body, "n")
        task_id = body.get("taskId")
        if task_id is not None and task_id not in state.tasks:
            raise _BadRequest(f"unknown taskId {task_id!r}")
    except _BadRequest as exc:
        return _bad(str(exc))
    state.grow(n, task_id)
    return web.json_response({"totals": {t: task.total for t, task in state.tasks.items()}})


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].faults.to_json())


async def set_faults(request: web.Request) -> web.Response:
    """Change any subset of the faults; keys left out keep their value."""
    faults = request.app[STATE].faults
    try:
        body = await _json_body(request)
        if body.get("clear"):
            faults.clear()
        for key in ("latency_ms", "latency_jitter_ms", "fail_rate"):
            if key in body:
                setattr(faults, key, _number(body, key))
        if "fail_rate_status" in body:
            faults.fail_rate_status = _count(body, "fail_rate_status")
        if "rate_limit" in body:
            burst = _number(body, "rate_burst_seconds") if "rate_burst_seconds" in body else 5.0
            rate = None if body["rate_limit"] is None else _number(body, "rate_limit")
            faults.set_rate_limit(rate or None, burst)
        if "fail_next" in body:
            spec = body["fail_next"]
            faults.fail_next(
                _count(spec, "n"),
                _count(spec, "status") if "status" in spec else 503,
                spec.get("endpoint", "data"),
                spec.get("body"),
            )
        if "stall_next" in body:
            spec = body["stall_next"]
            faults.stall_next(
                _count(spec, "n"), _number(spec, "seconds"), spec.get("endpoint", "data")
            )
    except (_BadRequest, ValueError, TypeError, AttributeError) as exc:
        return _bad(str(exc))
    return web.json_response(faults.to_json())


async def expire_tokens(request: web.Request) -> web.Response:
    try:
        body = await _json_body(request)
    except _BadRequest as exc:
        return _bad(str(exc))
    request.app[STATE].expire_tokens(refresh_too=bool(body.get("refresh", False)))
    return web.json_response({"ok": True})


async def truth(request: web.Request) -> web.Response:
    """Ground truth for rows offset..offset+size, for checks that run outside this process."""
    state = request.app[STATE]
    task = state.tasks.get(request.query.get("taskId", ""))
    if task is None:
        return _bad("unknown or missing taskId")
    try:
        offset = int(request.query.get("offset", "0"))
        size = int(request.query.get("size", "100"))
    except ValueError:
        return _bad("offset and size must be integers")
    stop = min(task.total, offset + max(0, size))
    items = [dataclasses.asdict(task.truth(i)) for i in range(max(0, offset), stop)]
    return web.json_response({"total": task.total, "rows": items}, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
