"""The aiohttp middleware under every URL: errors raised outside the views (unknown path, wrong
method, a missing static file) get the JSON envelope too, and each request is counted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from jobstream import metrics
from jobstream.web.base import error_response

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    # The pattern, not the URL: a bounded set of label values.
    return resource.canonical if resource is not None else "unmatched"


def _message(exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return f"method {exc.method} not allowed here; use {', '.join(sorted(exc.allowed_methods))}"
    if isinstance(exc, web.HTTPNotFound):
        return "no such endpoint; see /openapi.json"
    return exc.reason


@web.middleware
async def envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    route = _route(request)
    status = 500
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
            response = error_response(exc.status, _message(exc), headers)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("unhandled error in %s %s", request.method, request.path)
            response = error_response(500, "internal error; see the worker log")
        status = response.status
        if not response.prepared:
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response
    finally:
        metrics.HTTP_REQUESTS.labels(route, request.method, str(status)).inc()
        metrics.HTTP_LATENCY.labels(route).observe(time.monotonic() - started)
