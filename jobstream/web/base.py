"""The JSON envelope every view answers with: {"code": 0, "data": ...} or {"code", "message"}."""

from __future__ import annotations

import logging
from typing import Any

from faust import web
from faust.web.exceptions import WebError

logger = logging.getLogger(__name__)


class ApiError(WebError):
    """A request the API refuses; `code` is the HTTP status, `message` says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(detail=message, code=status)


class JsonView(web.View):
    """Base view: shapes the envelope, and never lets a traceback reach the client."""

    def ok(self, data: Any, status: int = 200) -> web.Response:
        return self.json({"code": 0, "data": data}, status=status)

    def error(self, status: int, reason: str, headers: Any = None, **kwargs: Any) -> web.Response:
        return self.json({"code": status, "message": reason}, status=status, headers=headers)

    async def dispatch(self, request: Any) -> Any:
        try:
            return await super().dispatch(request)
        except Exception:
            logger.exception("unhandled error in %s %s", request.method, request.path)
            return self.error(500, "internal error; see the worker log")
