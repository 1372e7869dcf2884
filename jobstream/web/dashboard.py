"""GET /dashboard: the operators' page (one HTML, one script, one stylesheet shipped in the
package, nothing from elsewhere), `/` sending browsers there, and GET /dashboard/settings, what
the page needs to know before it asks for anything: which tokens to ask the operator for.

The page reads /status every two seconds and /status/history once; every value from the data
is put in the page as text. Its policy allows scripts and styles from this worker only, no
inline script or style attribute, and connections to this worker only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, ClassVar

import msgspec
from aiohttp import web

from jobstream.web.endpoint import Body, Doc, Endpoint, JsonView, Ok, Redirect
from jobstream.web.history import KEEP_SECONDS

DASHBOARD_DIR = Path(__file__).parent / "static" / "dashboard"
REFRESH_SECONDS = 2.0
DASHBOARD_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@cache
def _asset(name: str) -> bytes:
    return (DASHBOARD_DIR / name).read_bytes()


class DashboardSettings(msgspec.Struct, frozen=True):
    """仪表盘页面的设置"""

    admin_token: Annotated[bool, msgspec.Meta(description="启停采集是否需要管理令牌")]
    read_token: Annotated[bool, msgspec.Meta(description="读取数据是否需要读取令牌")]
    refresh_seconds: float
    history_seconds: float
    version: str


class DashboardSettingsView(JsonView):
    doc = Doc(
        "仪表盘页面的设置（需要哪些令牌、刷新间隔）", "仪表盘", {200: Ok("设置", DashboardSettings)}
    )

    async def get(self, request: web.Request) -> web.Response:
        return self.ok(
            DashboardSettings(
                admin_token=bool(self.config.app.admin_token),
                read_token=bool(self.config.app.read_token),
                refresh_seconds=REFRESH_SECONDS,
                history_seconds=KEEP_SECONDS,
                version=self.config.app.version,
            )
        )


class PackagedFile(Endpoint):
    """One file of the page, revalidated on every load so an upgrade is seen at once."""

    file: ClassVar[str]
    content_type: ClassVar[str]

    async def get(self, request: web.Request) -> web.Response:
        return web.Response(
            body=_asset(self.file),
            content_type=self.content_type,
            charset="utf-8",
            headers={"Content-Security-Policy": DASHBOARD_POLICY, "Cache-Control": "no-cache"},
        )


class DashboardView(PackagedFile):
    file = "index.html"
    content_type = "text/html"
    doc = Doc(
        "运维仪表盘：每个任务的进度、状态、吞吐量、积压与启停按钮",
        "仪表盘",
        {200: Body("HTML 页面（脚本与样式随程序包发布，不访问任何外部地址）", "text/html")},
    )


class DashboardScriptView(PackagedFile):
    file = "app.js"
    content_type = "text/javascript"
    doc = Doc("仪表盘的脚本", "仪表盘", {200: Body("脚本", "text/javascript")})


class DashboardStyleView(PackagedFile):
    file = "app.css"
    content_type = "text/css"
    doc = Doc("仪表盘的样式", "仪表盘", {200: Body("样式表", "text/css")})


class RootView(Endpoint):
    """`/`: a browser pointed at the worker lands on the dashboard."""

    doc = Doc("转到 /dashboard", "仪表盘", {302: Redirect("重定向到仪表盘", "/dashboard")})

    async def get(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/dashboard"})
