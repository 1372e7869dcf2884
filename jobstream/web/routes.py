"""Every URL the worker serves, on one screen."""

from __future__ import annotations

from jobstream.app import app
from jobstream.web.health import HealthView, ReadyView
from jobstream.web.status import StatusView

app.page("/status")(StatusView)
app.page("/health")(HealthView)
app.page("/ready")(ReadyView)
