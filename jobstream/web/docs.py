"""GET /openapi.json and GET /docs: the API description and Swagger UI, served from files
shipped in the package (jobstream/web/static), so the page works without a CDN."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aiohttp import web

from jobstream.web.endpoint import Body, Doc, Endpoint
from jobstream.web.responses import json_response
from jobstream.web.services import OPENAPI

STATIC_DIR = Path(__file__).parent / "static"
# Everything the page loads comes from this worker; no inline script or style (Swagger UI
# styles its elements from its script, which a policy does not restrict).
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@cache
def docs_page() -> bytes:
    return (STATIC_DIR / "docs.html").read_bytes()


class OpenApiView(Endpoint):
    doc = Doc(
        "本文档（OpenAPI 3.1）",
        "文档",
        {200: Body("OpenAPI 文档", "application/json", {"type": "object"})},
    )

    async def get(self, request: web.Request) -> web.Response:
        return json_response(request.app[OPENAPI])


class DocsView(Endpoint):
    doc = Doc(
        "交互式 API 文档（Swagger UI，资源随程序包发布，不依赖 CDN；令牌只保存在当前页面中）",
        "文档",
        {200: Body("HTML 页面", "text/html")},
    )

    async def get(self, request: web.Request) -> web.Response:
        return web.Response(
            body=docs_page(),
            content_type="text/html",
            charset="utf-8",
            headers={"Content-Security-Policy": DOCS_POLICY, "Cache-Control": "no-cache"},
        )
