"""What the views reach under aiohttp AppKeys, set by `routes`: the worker's runtime, and the
OpenAPI document of every route (made once, when the routes are registered)."""

from __future__ import annotations

from aiohttp import web

from jobstream.runtime import Runtime

RUNTIME = web.AppKey("jobstream.runtime", Runtime)
OPENAPI = web.AppKey("jobstream.openapi", dict)
