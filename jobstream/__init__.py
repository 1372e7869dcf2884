"""jobstream: crawl Bazhuayu job postings, keep the last 7 days, stream them into Kafka.

`faust -A jobstream worker` finds `app` here. This module wires the worker once, explicitly
(no autodiscovery: a broken module fails at start): the runtime that owns the crawl, the
progress store, the sender, the probe and the alerts; the agents and the crawl loop, each given
the runtime; and the web views.
"""

from jobstream.app import app
from jobstream.dedupe import agent as dedupe_agent
from jobstream.pipeline import apply, commands
from jobstream.runtime import Runtime
from jobstream.topics import crawl_progress
from jobstream.web import routes

runtime = Runtime(app, crawl_progress)
app.run_beside(runtime)
apply.declare(app, runtime.config, runtime.store, runtime.worker)
commands.declare(app, runtime.store, runtime.crawler.run_now)
dedupe_agent.declare(app, runtime.config, runtime.worker)
# A Faust task, not a service task: it starts once the tables are recovered.
app.task(runtime.crawler.run_forever)
routes.register(app, runtime)

__all__ = ["app", "runtime"]
