"""The dashboard's files and settings in-process: a strict policy, nothing from elsewhere, no
way for data to become markup. The page itself runs in a browser in
tests/integration/test_dashboard.py."""

from __future__ import annotations

import re

import pytest

from jobstream.web.dashboard import DASHBOARD_DIR
from tests.web.conftest import Served, ServeFactory

ASSETS = {
    "/dashboard": "text/html",
    "/dashboard/app.js": "text/javascript",
    "/dashboard/app.css": "text/css",
}


@pytest.mark.parametrize(("path", "content_type"), ASSETS.items())
async def test_dashboard_files_served_with_a_strict_policy(
    served: Served, path: str, content_type: str
) -> None:
    response = await served.client.get(path)
    assert response.status == 200
    assert response.content_type == content_type and response.charset == "utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == policy["style-src"] == policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert len(await response.read()) > 500


def test_dashboard_page_loads_only_its_own_files_and_no_inline_code() -> None:
    page = (DASHBOARD_DIR / "index.html").read_text()
    sources = set(re.findall(r'(?:src|href)="([^"]+)"', page))
    assert sources == {"data:,", "/dashboard/app.css", "/dashboard/app.js", "/docs", "/metrics"}
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="/dashboard/app.js" defer>']
    assert re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.S) == [""]  # no inline code
    assert not re.search(r"\son\w+\s*=", page)  # no event handler attributes
    assert not re.search(r"\sstyle\s*=", page)  # no inline style (the policy refuses it)
    assert '<html lang="zh-CN">' in page and 'name="viewport"' in page


def test_dashboard_script_never_turns_data_into_markup() -> None:
    script = (DASHBOARD_DIR / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script.replace("never assigns innerHTML", ""), sink
    assert "new Function" not in script and 'setTimeout("' not in script
    assert not re.search(r"https?://", script)  # every request goes to this worker
    assert "textContent" in script


async def test_dashboard_root_redirects_to_the_dashboard(served: Served) -> None:
    response = await served.client.get("/", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/dashboard"


async def test_dashboard_settings_say_which_token_to_ask_for(
    served: Served, serve_factory: ServeFactory
) -> None:
    response = await served.client.get("/dashboard/settings")
    body = await response.json()
    assert response.status == 200 and body["code"] == 0
    assert body["data"]["admin_token"] is False and body["data"]["read_token"] is False
    assert body["data"]["refresh_seconds"] > 0 and body["data"]["history_seconds"] == 3600
    guarded = await serve_factory(app={"admin_token": "secret-dashboard-token"})
    response = await guarded.client.get("/dashboard/settings")
    text = await response.text()
    assert response.status == 200 and '"admin_token":true' in text
    assert "secret-dashboard-token" not in text
