"""`/_sim/*`: what tests and benchmarks use to steer the simulator from outside its process."""

import dataclasses
import json
from typing import Any

from aiohttp import web

from jobstream.simulator.api import STATE
from jobstream.simulator.cursor import CursorFault
from jobstream.simulator.state import SimulatorState


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


async def tokens(request: web.Request) -> web.Response:
    """Every access and refresh token issued so far, and to which client: what a test checks
    the client's logs for."""
    issued = request.app[STATE].tokens.issued
    return web.json_response(
        {
            "tokens": [
                {"client": t.client, "access_token": t.access_token, "refresh": t.refresh_token}
                for t in issued
            ]
        }
    )


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


def _task_id(state: SimulatorState, body: dict[str, Any]) -> str:
    """The body's `taskId`, or the first task when it names none."""
    task_id = body.get("taskId", state.config.task_ids[0])
    if task_id not in state.tasks:
        raise _BadRequest(f"unknown taskId {task_id!r}")
    return str(task_id)


def _cursor_json(state: SimulatorState) -> dict[str, Any]:
    return {"armed": state.cursor.to_json(), "fired": dict(state.stats.cursor)}


_CURSOR_PARAMS = ("times", "skip", "extra", "cursor", "back")


def _cursor_fault(state: SimulatorState, body: dict[str, Any]) -> CursorFault:
    unknown = set(body) - {"kind", "taskId", "at_offset", "clear", *_CURSOR_PARAMS}
    if unknown:
        raise _BadRequest(f"unknown keys {sorted(unknown)}")
    if "at_offset" not in body:
        raise _BadRequest("at_offset is required")
    return CursorFault(
        kind=body["kind"],
        task_id=_task_id(state, body),
        at_offset=body["at_offset"],
        **{key: body[key] for key in _CURSOR_PARAMS if key in body},
    )


async def get_cursor(request: web.Request) -> web.Response:
    return web.json_response(_cursor_json(request.app[STATE]))


async def set_cursor(request: web.Request) -> web.Response:
    """Arm one cursor anomaly (`cursor.CursorFault`), or disarm all with `{"clear": true}`."""
    state = request.app[STATE]
    try:
        body = await _json_body(request)
        if body.get("clear"):
            state.cursor.clear()
        if "kind" in body:
            state.cursor.arm(_cursor_fault(state, body))
    except (_BadRequest, ValueError, TypeError) as exc:
        return _bad(str(exc))
    return web.json_response(_cursor_json(state))


async def reset_task(request: web.Request) -> web.Response:
    """Clear a task's data and collect it again: `{"taskId", "total", "seed"}`."""
    state = request.app[STATE]
    try:
        body = await _json_body(request)
        task_id = _task_id(state, body)
        total = _count(body, "total")
        seed = _count(body, "seed") if "seed" in body else None
    except _BadRequest as exc:
        return _bad(str(exc))
    seed = state.reset(task_id, total, seed)
    totals = {t: task.total for t, task in state.tasks.items()}
    return web.json_response({"taskId": task_id, "total": total, "seed": seed, "totals": totals})


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
