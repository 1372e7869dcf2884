"""Every URL the worker serves, on one screen, and the web-side setup that goes with them.

Faust also serves its own `/`, `/router/` and `/table/` pages (built-in blueprints).
"""

from __future__ import annotations

from typing import cast

from aiohttp import web
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from jobstream.app import app
from jobstream.web import gateway
from jobstream.web.consume import ConsumeView
from jobstream.web.crawl import CrawlStartView, CrawlStopView
from jobstream.web.docs import STATIC_DIR, DocsView, OpenApiView
from jobstream.web.health import HealthView, ReadyView
from jobstream.web.middleware import envelope
from jobstream.web.prometheus import MetricsView
from jobstream.web.status import StatusView
from jobstream.web.stream import StreamView

app.page("/consume")(ConsumeView)
app.page("/consume/stream")(StreamView)
app.page("/status")(StatusView)
app.page("/crawl/start")(CrawlStartView)
app.page("/crawl/stop")(CrawlStopView)
app.page("/metrics")(MetricsView)
app.page("/health")(HealthView)
app.page("/ready")(ReadyView)
app.page("/openapi.json")(OpenApiView)
app.page("/docs")(DocsView)
app.web.add_static("/docs/static", STATIC_DIR, follow_symlinks=False, show_index=False)

# Faust's aiohttp driver: its application takes the middleware and the shutdown hook.
web_app = cast(AiohttpWeb, app.web).web_app
web_app.middlewares.append(envelope)
# The Kafka clients behind /consume, /consume/stream and the lag, started with the app.
app.service(gateway.Gateway)


async def _end_streams(_: web.Application) -> None:
    # aiohttp waits for open handlers at shutdown: end the endless ones first.
    gw = gateway.running()
    if gw is not None:
        gw.stop_streams()


web_app.on_shutdown.append(_end_streams)
