"""What a webhook URL may show in a log line or an error: never its token.

Robot URLs carry their access token in the query (WeCom `?key=`, DingTalk `?access_token=`) or
in the path (Feishu `/open-apis/bot/v2/hook/<token>`), so only the scheme and the host are kept.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def mask_url(url: str) -> str:
    """`https://oapi.dingtalk.com/robot/send?access_token=abc` -> `https://oapi.dingtalk.com/…?…`"""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    masked = f"{parts.scheme}://{host}{port}"
    if parts.path.strip("/"):
        masked += "/…"
    if parts.query:
        masked += "?…"
    return masked


def scrub(text: str, url: str) -> str:
    """`text` (an exception's message) with every piece of `url` that could hold a token masked."""
    parts = urlsplit(url)
    masked = mask_url(url)
    for piece in sorted({url, url.split("#")[0], parts.path, parts.query}, key=len, reverse=True):
        if len(piece) > 1:
            text = text.replace(piece, masked)
    return text


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


_URL_QUERY = re.compile(r"(https?://[^\s?#\"'<>]+)\?[^\s\"'<>]*")


def hide_queries(text: str) -> str:
    """Free text from elsewhere (a task's last error) with the query of any URL in it masked."""
    return _URL_QUERY.sub(r"\1?…", text)
