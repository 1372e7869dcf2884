"""The base views: what an endpoint accepts (methods, query parameters, tokens, callers from
other sites), and for the JSON endpoints the success envelope. Errors are raised, never
answered here: the middleware in `jobstream.web.responses` answers them all.

Doors (README, "安全"): the admin token guards the crawl controls, the read token the data;
either is off while it is not set. An endpoint that changes state (starting or stopping a
crawl, and GET /consume, which commits a consumer group's offsets) refuses requests a browser
marks as coming from another site, and a POST must also be one no web page can send without
the browser asking first: JSON, or carrying an Authorization header.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NoReturn

from aiohttp import web
from faust import web as faust_web
from faust.web.exceptions import WebError

from jobstream.app import JobstreamApp
from jobstream.config import Config
from jobstream.web.params import SHARED, Param
from jobstream.web.responses import JSON_TYPE, HttpError, json_response, quoted

logger = logging.getLogger(__name__)

Access = Literal["open", "read", "admin"]
# Marks a request one worker forwards to another (jobstream.web.forwarding).
ROUTED_HEADER = "X-Jobstream-Routed"
# Sec-Fetch-Site values of a request a browser did not send on another site's behalf; "none"
# is the user's own navigation (the address bar, a bookmark).
OWN_SITE = frozenset({"same-origin", "none"})
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True)
class Ok:
    """A success in the JSON envelope: `{"code": 0, "data": <data>, **extra}`. `data` is a
    type (msgspec describes it), or a tuple of types when it is one of them."""

    description: str
    data: Any
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Body:
    """A success that is not the envelope: a page, a script, a stream, this document."""

    description: str
    media_type: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Refusal:
    """An error answer (`{"code": <status>, "message": ...}`) and when it is given."""

    description: str


@dataclass(frozen=True)
class Redirect:
    description: str
    location: str


Answer = Ok | Body | Refusal | Redirect


@dataclass(frozen=True)
class Doc:
    """What /openapi.json says of an endpoint beyond what its declarations give (parameters,
    tokens, refusals of other sites and of bare POSTs): for the API's users, in Chinese. The
    answers are those of the endpoint's own logic, by status."""

    summary: str
    tag: str
    answers: Mapping[int, Answer]
    description: str = ""


class Endpoint(faust_web.View):
    """A view that declares the methods it serves (aiohttp answers the others with 405), the
    parameters it takes (unknown query parameters are a 400), which token it needs (`access`),
    whether it changes state (`changes_state`: refused to other sites' pages) and what it
    answers (`doc`); /openapi.json is made of these declarations."""

    methods_allowed: ClassVar[frozenset[str]] = frozenset({"GET", "HEAD"})
    # Each a `Param`, or the name of a shared one (`jobstream.web.params.SHARED`).
    params: ClassVar[Collection[Param | str]] = ()
    # "read": the read token or the admin token; "admin": the admin token. Each is open while
    # its token is not set.
    access: ClassVar[Access] = "open"
    changes_state: ClassVar[bool] = False
    doc: ClassVar[Doc]
    app: JobstreamApp

    @classmethod
    def declared_params(cls) -> list[Param]:
        return [SHARED[p] if isinstance(p, str) else p for p in cls.params]

    @classmethod
    def query_names(cls) -> frozenset[str]:
        return frozenset(p.name for p in cls.declared_params() if p.where == "query")

    @property
    def config(self) -> Config:
        return self.app.settings

    def get_methods(self) -> set[str]:
        # Faust registers a route per method returned here.
        return set(self.methods_allowed)

    async def dispatch(self, request: Any) -> Any:
        check_authorization_header(request)
        if self.changes_state:
            refuse_other_sites(request)
        # The token before anything else: a caller without it learns nothing from a 400.
        settings = self.config.app
        if self.access == "admin":
            check_bearer(request, settings.admin_token)
        elif self.access == "read":
            check_bearer(request, settings.read_token, "app.read_token", settings.admin_token)
        if self.changes_state and request.method == "POST":
            require_deliberate(request)
        names = self.query_names()
        unknown = sorted(set(request.query) - names)
        if unknown:
            allowed = ", ".join(sorted(names)) or "none"
            raise HttpError(
                400, f"unknown query parameter {quoted(unknown[0])}; this endpoint takes: {allowed}"
            )
        return await super().dispatch(request)

    async def on_request_error(self, request: Any, exc: WebError) -> NoReturn:
        # Faust would answer with its own body; the middleware answers with the envelope.
        raise exc


class JsonView(Endpoint):
    """An endpoint that answers `{"code": 0, "data": ...}`."""

    def ok(self, data: Any, status: int = 200, **extra: Any) -> web.Response:
        return json_response({"code": 0, "data": data, **extra}, status)


def warn_if_data_open(config: Config) -> None:
    if not config.app.read_token:
        logger.warning(
            "app.read_token (READ_TOKEN) is not set: anyone who reaches port %d can read "
            "job_data (GET /consume, which also moves /consume's consumer groups, and "
            "/consume/stream) and /status",
            config.app.web_port,
        )


def check_bearer(
    request: web.Request, token: str, name: str = "app.admin_token", also: str = ""
) -> None:
    """Refuse the request unless it carries `Authorization: Bearer <token>` (or `also`, the
    admin token where the read token is asked for); nothing is refused while `token` is
    not set."""
    if not token:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise HttpError(
            401,
            f"missing bearer token (Authorization: Bearer <{name}>)",
            {"WWW-Authenticate": 'Bearer realm="jobstream"'},
        )
    presented = as_bytes(given.strip())
    # Both compared, always: the time taken does not tell which one came close.
    matches = [hmac.compare_digest(presented, as_bytes(t)) for t in (token, also) if t]
    if not any(matches):
        raise HttpError(
            401,
            "invalid bearer token",
            {"WWW-Authenticate": 'Bearer realm="jobstream", error="invalid_token"'},
        )


def refuse_other_sites(request: web.Request) -> None:
    """403 for a request a browser sent from another site's page (an `<img>`, a form, a
    script): its Sec-Fetch-Site says so, or its Origin is not this server. Clients that are
    not browsers send neither header."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.strip().lower() not in OWN_SITE:
        raise HttpError(
            403, f"refused: a request from another site (Sec-Fetch-Site: {quoted(site, 20)})"
        )
    origin = request.headers.get("Origin")
    if origin is not None and _host_of(origin) not in _own_hosts(request):
        raise HttpError(403, f"refused: a request from another origin ({quoted(origin, 100)})")


def check_authorization_header(request: web.Request) -> None:
    """400 for an Authorization header that is not printable ASCII, whether or not a token is
    asked for: no token can look like that, and the header is passed on to the worker that
    owns a task, whose HTTP client could not send it."""
    value = request.headers.get("Authorization")
    if value is not None and not _PRINTABLE.fullmatch(value):
        raise HttpError(
            400,
            f"Authorization: expected printable ASCII (Bearer <token>), got {quoted(value, 40)}",
        )


def as_bytes(value: str) -> bytes:
    """A header value as the bytes that came (aiohttp decodes them as UTF-8, keeping what is
    not UTF-8 as lone surrogates, which `str.encode` refuses)."""
    return value.encode("utf-8", "surrogateescape")


def require_deliberate(request: web.Request) -> None:
    """415 for a POST a web page could send without the browser asking first (a form, a bare
    fetch): it must be JSON or carry an Authorization header. Requests one worker forwards
    to another carry a header of their own, which no page can add without asking either."""
    if request.content_type == JSON_TYPE or "Authorization" in request.headers:
        return
    if ROUTED_HEADER in request.headers:
        return
    raise HttpError(
        415,
        "send Content-Type: application/json (or an Authorization header): a bare or form "
        "POST could come from any web page",
    )


def _host_of(origin: str) -> str:
    return origin.strip().partition("://")[2].rstrip("/").lower()


def _own_hosts(request: web.Request) -> set[str]:
    """The names this server was called by: its Host header, and a proxy's X-Forwarded-Host."""
    hosts = {request.headers.get("Host", "")}
    hosts.update(h.strip() for h in request.headers.get("X-Forwarded-Host", "").split(","))
    return {h.lower() for h in hosts if h}
