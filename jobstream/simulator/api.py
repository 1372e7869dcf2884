"""The two OpenAPI endpoints the crawler uses: `POST /token` and `GET /data/all`."""

import json
import logging
from typing import Any

from aiohttp import web

from jobstream.simulator import cursor, page_bytes, replies
from jobstream.simulator.state import SimulatorState

logger = logging.getLogger(__name__)

STATE = web.AppKey("state", SimulatorState)

MAX_SIZE = 1000


async def _read_body(request: web.Request) -> dict[str, Any] | None:
    # The current API takes JSON; the older generation posted a form. Accepting both is cheap.
    if request.content_type == "application/x-www-form-urlencoded":
        return dict(await request.post())
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


async def token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    config = state.config
    body = await _read_body(request)
    if body is None:
        return replies.error(400, "Invalid.Parameter", "request body must be a JSON object")
    grant = body.get("grant_type")
    state.stats.count_grant(str(grant))
    if grant == "password":
        username = body.get("username")
        expected = config.password_of(username) if isinstance(username, str) else None
        if expected is None or body.get("password") != expected:
            message = "The user name or password is incorrect."
            return replies.error(400, "Invalid.Grant", _echo(state, message, body))
        issued = state.tokens.issue(account=str(username))
    elif grant == "refresh_token":
        refreshed = state.tokens.refresh(str(body.get("refresh_token", "")))
        if refreshed is None:
            message = "The refresh token is invalid or expired."
            return replies.error(400, "Invalid.Grant", _echo(state, message, body))
        issued = refreshed
    else:
        return replies.error(400, "Unsupported.GrantType", f"unsupported grant_type {grant!r}")
    advertised = config.advertised_ttl if config.advertised_ttl is not None else config.token_ttl
    return replies.token(issued, advertised, legacy=config.legacy_token_shape)


def config_account(state: SimulatorState, task_id: str) -> str:
    return state.config.account_of_task(task_id)


async def account_of(request: web.Request, endpoint: str) -> str:
    """The account (user name) a token or data request is made for: the token's, or the
    user name of a password grant ("" when it names none the simulator knows)."""
    tokens = request.app[STATE].tokens
    if endpoint == "data":
        return tokens.account_of(bearer(request))
    body = await _read_body(request)  # aiohttp keeps the body: the handler reads it again
    if body is None:
        return ""
    if body.get("grant_type") == "refresh_token":
        return tokens.account_of(str(body.get("refresh_token", "")))
    username = body.get("username")
    if isinstance(username, str) and request.app[STATE].config.password_of(username) is not None:
        return username
    return ""


def bearer(request: web.Request) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _echo(state: SimulatorState, message: str, sent: object) -> str:
    """With `echo_secrets`, an error message that repeats what the request sent, escaped and
    cut short the way a careless gateway does: a test of the client's scrubbing."""
    if not state.config.echo_secrets:
        return message
    if isinstance(sent, dict):
        return f"{message} Request: {json.dumps(sent)[:60]}"
    return f"{message} Token: {sent!r:.16}"


def _int_param(request: web.Request, name: str, low: int, high: int | None) -> int | str:
    """The parameter's value, or the message explaining why it is unusable."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return f"{name} is required"
    try:
        value = int(raw)
    except ValueError:
        return f"{name} must be an integer, got {raw!r}"
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        return f"{name} must be {bound}, got {value}"
    return value


async def data_all(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.tick()
    if not state.tokens.is_valid(bearer(request)):
        message = "The access token is missing, invalid or expired."
        return replies.error(401, "Invalid.Token", _echo(state, message, bearer(request)))
    task_id = request.query.get("taskId", "")
    if not task_id:
        return replies.error(400, "Invalid.Parameter", "taskId is required")
    offset = _int_param(request, "offset", 0, None)
    size = _int_param(request, "size", 1, MAX_SIZE)
    for value in (offset, size):
        if isinstance(value, str):
            return replies.error(400, "Invalid.Parameter", value)
    assert isinstance(offset, int) and isinstance(size, int)
    task = state.tasks.get(task_id)
    if task is None or config_account(state, task_id) != state.tokens.account_of(bearer(request)):
        # Another account's task is as unknown to this one as a task that does not exist.
        return replies.error(400, "Task.NotFound", f"task {task_id} does not exist")

    fault = state.cursor.take(task_id, offset)
    if fault is not None:
        state.stats.count_cursor(fault.kind)
        logger.info("cursor anomaly %s fires for task %s at offset %d", fault.kind, task_id, offset)
    plan = cursor.plan_page(offset, size, task.total, fault)
    count = max(0, min(task.total, plan.first_row + plan.row_count) - plan.first_row)
    rows = state.page_cache.rows_json(
        task, plan.first_row, count, lambda: page_bytes.rows_json(task.rows(plan.first_row, count))
    )
    state.stats.count_page(task_id, count)
    page: dict[str, Any] = {"total": task.total}
    if state.config.include_offset:
        page["offset"] = plan.next_offset
    page["restTotal"] = plan.rest_total
    return replies.page_text(page, state.config.rows_key, rows)
