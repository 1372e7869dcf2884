"""GET /openapi.json and GET /docs: the API description and Swagger UI, served from files
shipped in the package (jobstream/web/static), so the page works without a CDN."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aiohttp import web

from jobstream.web import openapi
from jobstream.web.endpoint import Endpoint
from jobstream.web.responses import json_response

STATIC_DIR = Path(__file__).parent / "static"
# Everything the page loads comes from this worker.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


@cache
def docs_page() -> bytes:
    return (STATIC_DIR / "docs.html").read_bytes()


class OpenApiView(Endpoint):
    async def get(self, request: web.Request) -> web.Response:
        return json_response(openapi.spec(self.config, reserved_groups=(self.app.conf.id,)))


class DocsView(Endpoint):
    async def get(self, request: web.Request) -> web.Response:
        return web.Response(
            body=docs_page(),
            content_type="text/html",
            charset="utf-8",
            headers={"Content-Security-Policy": DOCS_POLICY, "Cache-Control": "no-cache"},
        )
