"""The worker's runtime as the views reach it: under its aiohttp AppKey, set by `routes`."""

from __future__ import annotations

from aiohttp import web

from jobstream.runtime import Runtime

RUNTIME = web.AppKey("jobstream.runtime", Runtime)
