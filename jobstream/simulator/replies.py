"""The shapes the Bazhuayu API answers in: success envelopes, error objects, gateway pages."""

import uuid
from typing import Any

from aiohttp import web

from jobstream.simulator import page_bytes
from jobstream.simulator.faults import Failure
from jobstream.simulator.tokens import IssuedToken

_GATEWAY_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_ERROR_CODES = {400: "Invalid.Parameter", 401: "Invalid.Token"}
_REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


def _request_id() -> str:
    return str(uuid.uuid4())


def ok(data: dict[str, Any]) -> web.Response:
    return web.json_response({"data": data, "requestId": _request_id()})


def page(data: dict[str, Any], rows_key: str) -> web.Response:
    """A data page; `data[rows_key]` may hold `RawRow`s, which are served byte for byte."""
    if not page_bytes.has_raw_rows(data[rows_key]):
        return ok(data)
    envelope = {"data": data, "requestId": _request_id()}
    return web.Response(
        body=page_bytes.spliced(envelope, rows_key, data[rows_key]),
        content_type="application/json",
        charset="utf-8",
    )


def page_text(data: dict[str, Any], rows_key: str, rows: bytes) -> web.Response:
    """A data page whose rows are already a JSON array (`page_bytes.rows_json`): the same bytes as
    `page` writes for the same rows."""
    envelope = {"data": {**data, rows_key: None}, "requestId": _request_id()}
    return web.Response(
        body=page_bytes.splice(envelope, rows_key, rows),
        content_type="application/json",
        charset="utf-8",
    )


def error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": {"code": code, "message": message}, "requestId": _request_id()}
    return web.json_response(body, status=status, headers=headers)


def token(issued: IssuedToken, advertised_ttl: float, *, legacy: bool) -> web.Response:
    seconds = max(1, round(advertised_ttl))
    fields: dict[str, Any] = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        # The current API writes expires_in as a string; the old one as a number.
        "expires_in": seconds if legacy else str(seconds),
        "refresh_token": issued.refresh_token,
    }
    if legacy:
        return web.json_response(fields)
    return ok(fields)


def rate_limited() -> web.Response:
    return error(
        429, "Too.Many.Requests", "Rate limit exceeded, slow down", headers={"Retry-After": "1"}
    )


def failure(f: Failure) -> web.Response:
    kind = f.body_kind
    if f.status == 429:
        return rate_limited()
    if kind == "html":
        reason = _REASONS.get(f.status, "Error")
        page = _GATEWAY_PAGE.format(status=f.status, reason=reason)
        return web.Response(status=f.status, text=page, content_type="text/html")
    if kind == "truncated":
        # A body cut off mid-stream: looks like JSON, does not parse.
        return web.Response(
            status=f.status, text='{"data": {"total": 12, "offs', content_type="application/json"
        )
    code = _ERROR_CODES.get(f.status, "Internal.Error")
    return error(f.status, code, f"simulated failure (HTTP {f.status})")
