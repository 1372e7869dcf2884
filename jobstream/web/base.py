"""The JSON envelope every view answers with: {"code": 0, "data": ...} or {"code", "message"}.

`code` in an error is the HTTP status. Views raise `ApiError`; anything else that escapes a view
is logged with its traceback and answered as a bare 500, so no traceback, path or secret ever
reaches a client.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web
from faust import web as faust_web
from faust.web.exceptions import WebError

logger = logging.getLogger(__name__)

JSON_TYPE = "application/json"


class ApiError(WebError):
    """A request the API refuses; `status` is the HTTP status, `message` says why."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail=message, code=status, headers=dict(headers or {}))


def json_body(value: Any) -> bytes:
    # Chinese text stays readable in curl and logs.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


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
    return json_response({"code": status, "message": message}, status, headers)


class JsonView(faust_web.View):
    """Base view: the envelope, the methods and query parameters a view accepts, and a
    last-resort 500. Subclasses set `methods_allowed` and `params`."""

    methods_allowed: ClassVar[frozenset[str]] = frozenset({"GET", "HEAD"})
    params: ClassVar[frozenset[str]] = frozenset()

    def get_methods(self) -> set[str]:
        # Faust registers a route per method returned here; aiohttp answers the others
        # with 405 and an Allow header (made JSON by the middleware).
        return set(self.methods_allowed)

    def ok(self, data: Any, status: int = 200, **extra: Any) -> web.Response:
        return json_response({"code": 0, "data": data, **extra}, status)

    # Faust types its responses abstractly; jobstream runs only its aiohttp driver.
    def error(  # type: ignore[override]
        self, status: int, reason: str, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> web.Response:
        return error_response(status, reason, headers)

    async def dispatch(self, request: Any) -> Any:
        unknown = sorted(set(request.query) - self.params)
        if unknown:
            allowed = ", ".join(sorted(self.params)) or "none"
            return self.error(
                400, f"unknown query parameter {unknown[0]!r:.60}; this endpoint takes: {allowed}"
            )
        try:
            return await super().dispatch(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("unhandled error in %s %s", request.method, request.path)
            return self.error(500, "internal error; see the worker log")
