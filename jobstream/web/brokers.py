"""How the HTTP layer's Kafka clients reach the broker: addresses, timeouts, group sessions."""

from __future__ import annotations

from typing import Any

from jobstream.app import EMBEDDED_GROUP_TIMEOUTS, GROUP_TIMEOUTS, app, broker_urls


def bootstrap_servers() -> list[str]:
    return [url.split("://", 1)[-1] for url in broker_urls(app.settings)]


def client_options() -> dict[str, Any]:
    return {
        "bootstrap_servers": bootstrap_servers(),
        "request_timeout_ms": int(app.settings.kafka.http_timeout * 1000),
    }


def group_options() -> dict[str, Any]:
    """The same session settings as the Faust worker (see jobstream.app for why)."""
    timeouts = EMBEDDED_GROUP_TIMEOUTS if app.settings.kafka.is_embedded else GROUP_TIMEOUTS
    return {
        "session_timeout_ms": int(timeouts["broker_session_timeout"] * 1000),
        "heartbeat_interval_ms": int(timeouts["broker_heartbeat_interval"] * 1000),
    }
