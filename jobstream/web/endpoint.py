"""The base views: what an endpoint accepts (methods, query parameters, the admin token), and
for the JSON endpoints the success envelope. Errors are raised, never answered here: the
middleware in `jobstream.web.responses` answers them all."""

from __future__ import annotations

import hmac
from typing import Any, ClassVar, NoReturn

from aiohttp import web
from faust import web as faust_web
from faust.web.exceptions import WebError

from jobstream.app import JobstreamApp
from jobstream.config import Config
from jobstream.web.responses import HttpError, json_response


class Endpoint(faust_web.View):
    """A view that declares the methods it serves (aiohttp answers the others with 405), the
    query parameters it takes (others are a 400), and whether it needs the admin token."""

    methods_allowed: ClassVar[frozenset[str]] = frozenset({"GET", "HEAD"})
    params: ClassVar[frozenset[str]] = frozenset()
    requires_token: ClassVar[bool] = False
    app: JobstreamApp

    @property
    def config(self) -> Config:
        return self.app.settings

    def get_methods(self) -> set[str]:
        # Faust registers a route per method returned here.
        return set(self.methods_allowed)

    async def dispatch(self, request: Any) -> Any:
        # The token before anything else: a caller without it learns nothing from a 400.
        if self.requires_token:
            check_bearer(request, self.config.app.admin_token)
        unknown = sorted(set(request.query) - self.params)
        if unknown:
            allowed = ", ".join(sorted(self.params)) or "none"
            raise HttpError(
                400, f"unknown query parameter {unknown[0]!r:.60}; this endpoint takes: {allowed}"
            )
        return await super().dispatch(request)

    async def on_request_error(self, request: Any, exc: WebError) -> NoReturn:
        # Faust would answer with its own body; the middleware answers with the envelope.
        raise exc


class JsonView(Endpoint):
    """An endpoint that answers `{"code": 0, "data": ...}`."""

    def ok(self, data: Any, status: int = 200, **extra: Any) -> web.Response:
        return json_response({"code": 0, "data": data, **extra}, status)


def check_bearer(request: web.Request, token: str) -> None:
    """Refuse the request unless it carries `Authorization: Bearer <token>` (when one is set)."""
    if not token:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise HttpError(
            401,
            "missing bearer token (Authorization: Bearer <app.admin_token>)",
            {"WWW-Authenticate": 'Bearer realm="jobstream"'},
        )
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise HttpError(
            401,
            "invalid bearer token",
            {"WWW-Authenticate": 'Bearer realm="jobstream", error="invalid_token"'},
        )
