"""What the worker starts for you on a fresh machine: the broker and the API simulator."""

from __future__ import annotations

from dataclasses import dataclass, field

from mode import ServiceT

from jobstream.config import Config
from jobstream.embedded.broker import EmbeddedBroker
from jobstream.embedded.simulator import DEMO_PASSWORD, DEMO_USERNAME, EmbeddedSimulator

__all__ = [
    "ApiEndpoint",
    "EmbeddedBroker",
    "EmbeddedSimulator",
    "api_endpoint",
    "embedded_services",
]

_simulator: EmbeddedSimulator | None = None


def embedded_services(config: Config) -> list[ServiceT]:
    global _simulator
    services: list[ServiceT] = []
    if config.kafka.is_embedded:
        services.append(EmbeddedBroker(config.kafka.embedded_port))
    if config.api.is_demo:
        _simulator = EmbeddedSimulator(config.api.task_ids)
        services.append(_simulator)
    return services


@dataclass(frozen=True)
class ApiEndpoint:
    """Where and as whom the crawler calls the API."""

    base_url: str
    username: str
    password: str = field(repr=False)
    demo: bool = False


def api_endpoint(config: Config) -> ApiEndpoint:
    if config.api.is_demo:
        if _simulator is None:
            raise RuntimeError("demo mode, but the embedded simulator was not started")
        return ApiEndpoint(_simulator.url, DEMO_USERNAME, DEMO_PASSWORD, demo=True)
    return ApiEndpoint(config.api.base_url, config.api.username, config.api.password, demo=False)
