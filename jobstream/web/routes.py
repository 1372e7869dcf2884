"""Every URL the worker serves, on one screen, and what the web application runs beside them:
the error middleware and the services of its own the views use (the /consume readers, the SSE
streams, the throughput history, the Kafka watch, the recent-messages reader), started and
stopped with it. The worker's runtime
(probe, store, crawler, alerts) is the app's, started with the worker; the views reach it
under `RUNTIME`.

Faust's own pages (`/router/`, `/table/`, and `/graph` and statistics with debug; its `/` is
shadowed by ours, registered first) tell anyone the cluster's layout and the tables' contents:
they are served only with `app.debug`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

from aiohttp import web
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from jobstream.app import JobstreamApp
from jobstream.broker.clients import group_options
from jobstream.runtime import Runtime
from jobstream.web import openapi
from jobstream.web.consume import ConsumeView
from jobstream.web.control import CrawlStartView, CrawlStopView, warn_if_unprotected
from jobstream.web.dashboard import (
    DashboardScriptView,
    DashboardSettingsView,
    DashboardStyleView,
    DashboardView,
    RootView,
)
from jobstream.web.docs import STATIC_DIR, DocsView, OpenApiView
from jobstream.web.endpoint import Endpoint, warn_if_data_open
from jobstream.web.forwarding import is_gateway
from jobstream.web.health import HealthView, ReadyView
from jobstream.web.history import HISTORY, History, HistoryView
from jobstream.web.kafka_status import KAFKA_WATCH, KafkaStatusView, KafkaWatch
from jobstream.web.prometheus import MetricsView
from jobstream.web.readers import READERS, ReaderPool
from jobstream.web.recent import RECENT, RecentMessagesView, RecentReader
from jobstream.web.replay import ReplayStopView, ReplayView
from jobstream.web.responses import answer_errors, quiet_unparsed_requests
from jobstream.web.services import OPENAPI, RUNTIME
from jobstream.web.sse.registry import STREAMS, StreamRegistry
from jobstream.web.sse.stream import StreamView
from jobstream.web.status import StatusView
from jobstream.web.trace import RecentTraceView, TraceView

ROUTES: dict[str, type[Endpoint]] = {
    "/consume": ConsumeView,
    "/consume/stream": StreamView,
    "/status": StatusView,
    "/status/history": HistoryView,
    "/kafka": KafkaStatusView,
    "/messages/recent": RecentMessagesView,
    "/crawl/start": CrawlStartView,
    "/crawl/stop": CrawlStopView,
    "/trace": TraceView,
    "/trace/recent": RecentTraceView,
    "/replay": ReplayView,
    "/replay/stop": ReplayStopView,
    "/metrics": MetricsView,
    "/health": HealthView,
    "/ready": ReadyView,
    "/openapi.json": OpenApiView,
    "/docs": DocsView,
    "/dashboard": DashboardView,
    "/dashboard/app.js": DashboardScriptView,
    "/dashboard/app.css": DashboardStyleView,
    "/dashboard/settings": DashboardSettingsView,
    "/": RootView,
}
STATIC_PREFIX = "/docs/static"


def register(app: JobstreamApp, runtime: Runtime) -> web.Application:
    """Serve every route on `app`'s web server, with the services behind the views; returns
    the aiohttp application (a test serves it with aiohttp's test client, and starts the
    runtime itself)."""
    if not app.settings.app.debug:
        _without_faust_pages(app)
    for path, view in ROUTES.items():
        app.page(path)(view)
    app.web.add_static(STATIC_PREFIX, STATIC_DIR, follow_symlinks=False, show_index=False)
    web_app = cast(AiohttpWeb, app.web).web_app
    web_app.middlewares.append(answer_errors)
    quiet_unparsed_requests()
    config = app.settings
    probe = runtime.probe
    web_app[RUNTIME] = runtime
    web_app[OPENAPI] = openapi.spec(config, ROUTES)
    web_app[READERS] = ReaderPool(
        config, probe, group_options(app.conf), lambda group: is_gateway(app, group)
    )
    web_app[STREAMS] = StreamRegistry(config, probe)
    web_app[HISTORY] = History(runtime)
    web_app[KAFKA_WATCH] = KafkaWatch(runtime)
    web_app[RECENT] = RecentReader(config, probe)

    async def run_services(web_app: web.Application) -> AsyncIterator[None]:
        services = (
            web_app[READERS],
            web_app[STREAMS],
            web_app[HISTORY],
            web_app[KAFKA_WATCH],
            web_app[RECENT],
        )
        for service in services:
            await service.start()
        warn_if_unprotected(config)
        warn_if_data_open(config)
        yield
        for service in reversed(services):
            await service.stop()

    web_app.cleanup_ctx.append(run_services)
    web_app.on_shutdown.append(_end_waits)
    return web_app


def _without_faust_pages(app: JobstreamApp) -> None:
    # Faust offers a setting for some of its blueprints, not for its index page; they are
    # applied when the server starts, so leaving them out of the list is enough.
    blueprints = app.web.blueprints
    blueprints._enabled = [
        (prefix, blueprint)
        for prefix, blueprint in blueprints._enabled
        if not (isinstance(blueprint, str) and blueprint.startswith("faust.web.apps."))
    ]


async def _end_waits(web_app: web.Application) -> None:
    # aiohttp waits for open handlers at shutdown: end the endless ones (streams) and the
    # long ones (a /consume waiting for data) first.
    web_app[STREAMS].end_all()
    web_app[READERS].stop_waiting()
