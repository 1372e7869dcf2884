"""jobstream: crawl Bazhuayu job postings, keep the last 7 days, stream them into Kafka.

`faust -A jobstream worker` finds `app` here. The imports below register the agents and the
crawl loop, and `register` the web views, explicitly (no autodiscovery: a broken module fails
at start).
"""

from jobstream.app import app
from jobstream.dedupe import agent as dedupe_agent
from jobstream.pipeline import apply, commands, crawl
from jobstream.web.routes import register

register(app)

__all__ = ["app", "apply", "commands", "crawl", "dedupe_agent"]
