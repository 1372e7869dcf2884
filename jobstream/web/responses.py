"""The JSON envelope every answer uses, and the one road from an error to a response.

Success is `{"code": 0, "data": ...}`; an error is `{"code": <HTTP status>, "message": "..."}`
with that status. Views raise `HttpError` where they know what is wrong; the middleware below
alone turns it, aiohttp's own HTTP errors (an unknown path, a wrong method) and anything
unexpected (logged with its traceback, answered as a bare 500) into the envelope. No
traceback, path or secret ever reaches a client. The middleware also counts every request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from faust.web.exceptions import WebError
from mode import ServiceT

from jobstream import metrics
from jobstream.errors import BrokerUnavailable
from jobstream.redaction import scrub

logger = logging.getLogger(__name__)

JSON_TYPE = "application/json"
# Seconds a client should wait before retrying a 503.
RETRY_SOON = 2
RETRY_LATER = 5

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ErrorBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """出错时的应答"""

    code: Annotated[int, msgspec.Meta(ge=400, le=599, description="HTTP 状态码")]
    message: Annotated[str, msgspec.Meta(min_length=1, description="出错原因")]


class HttpError(WebError):
    """A request jobstream refuses: `code` is the HTTP status, `detail` says why."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail=message, code=status, headers=dict(headers or {}))

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.extra_context["headers"])


def unavailable(message: str, retry_after: int = RETRY_LATER) -> HttpError:
    """A 503 with the `Retry-After` every 503 carries."""
    return HttpError(503, message, {"Retry-After": str(retry_after)})


def require_running(service: ServiceT) -> None:
    """503 unless `service` is between its start and its stop."""
    if not service.started or service.should_stop:
        raise unavailable("the worker is starting or stopping; retry shortly")


def json_body(value: Any) -> bytes:
    # Chinese text stays readable in curl and logs; Structs (the Status) become JSON objects.
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=msgspec.to_builtins)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (undecodable bytes from a header or a message): written as \uXXXX.
        return json.dumps(
            value, ensure_ascii=True, separators=(",", ":"), default=msgspec.to_builtins
        ).encode()


def quoted(value: str, limit: int = 60) -> str:
    """Input quoted in an error message: cut, and escaped as a Python literal (control
    characters and undecodable bytes as escapes), so that the message is one printable line."""
    return repr(value[:limit]) + ("…" if len(value) > limit else "")


def json_response(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json_body(value),
        status=status,
        content_type=JSON_TYPE,
        charset="utf-8",
        headers=headers,
    )


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    # Like any text that leaves the worker: no secret, one bounded line.
    return json_response(ErrorBody(code=status, message=scrub(message) or "error"), status, headers)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    # The pattern, not the URL: a bounded set of label values.
    return resource.canonical if resource is not None else "unmatched"


def _answer(exc: web.HTTPException) -> web.Response:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        message = (
            f"method {exc.method} not allowed here; use {', '.join(sorted(exc.allowed_methods))}"
        )
    elif isinstance(exc, web.HTTPNotFound):
        message = "no such endpoint; see /openapi.json"
    else:
        message = exc.reason
    headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
    return error_response(exc.status, message, headers)


class _BadRequestLines(logging.Filter):
    """aiohttp answers a request it cannot parse (raw bytes in the URL, a broken header line)
    with its own 400 before any handler runs, and logs it at ERROR with a traceback: one
    request a line of log, thirty. Such a request is counted instead, and logged in one line
    at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError) or not 400 <= (exc.code or 0) < 500:
            return True
        metrics.HTTP_REQUESTS.labels("unparsed", "other", str(exc.code)).inc()
        logger.debug("refused an HTTP request that cannot be parsed: %s", exc.message)
        return False


def quiet_unparsed_requests() -> None:
    """Install, once, the filter above on aiohttp's server log."""
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _BadRequestLines) for f in server_log.filters):
        server_log.addFilter(_BadRequestLines())


@web.middleware
async def answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as the envelope; every request counted by route, method and status."""
    started = time.monotonic()
    route = _route(request)
    status = 500
    try:
        try:
            response = await handler(request)
        except HttpError as exc:
            response = error_response(exc.code, exc.detail, exc.headers)
        except BrokerUnavailable as exc:
            response = error_response(503, str(exc), {"Retry-After": str(RETRY_LATER)})
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _answer(exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("unhandled error in %s %r", request.method, request.path)
            response = error_response(500, "internal error; see the worker log")
        status = response.status
        if not response.prepared:
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response
    finally:
        metrics.HTTP_REQUESTS.labels(route, metrics.method_label(request.method), str(status)).inc()
        metrics.HTTP_LATENCY.labels(route).observe(time.monotonic() - started)
