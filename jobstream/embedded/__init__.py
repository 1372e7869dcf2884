"""What the worker starts for you on a fresh machine: the broker and the API simulator."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mode import Service, ServiceT

from jobstream.config import Config
from jobstream.embedded.demo_api import DEMO_PASSWORD, DEMO_USERNAME, EmbeddedSimulator
from jobstream.embedded.tansu import EmbeddedBroker

__all__ = ["ApiEndpoint", "EmbeddedBroker", "EmbeddedServices", "EmbeddedSimulator"]


@dataclass(frozen=True)
class ApiEndpoint:
    """Where and as whom the crawler calls the API."""

    base_url: str
    username: str
    password: str = field(repr=False)
    demo: bool = False


class EmbeddedServices(Service):
    """The embedded broker (`kafka.bootstrap_servers: embedded`) and the built-in simulator
    (`api.base_url: demo`), whichever the config asks for; the app starts this service before
    its producer and consumers, and stops it after them."""

    def __init__(self, config: Config, **kwargs: object) -> None:
        self.config = config
        self.broker = (
            EmbeddedBroker(config.kafka.embedded_port) if config.kafka.is_embedded else None
        )
        # The simulator keeps its rows in the data directory, beside the progress mirror.
        self.simulator = (
            EmbeddedSimulator(config.api.task_ids, Path(config.database.path).parent)
            if config.api.is_demo
            else None
        )
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        return [service for service in (self.broker, self.simulator) if service is not None]

    def api_endpoint(self) -> ApiEndpoint:
        """The simulator once it serves (demo), else the configured API and credentials."""
        api = self.config.api
        if self.simulator is None:
            return ApiEndpoint(api.base_url, api.username, api.password, demo=False)
        if not self.simulator.started:
            raise RuntimeError("demo mode, but the embedded simulator has not started")
        return ApiEndpoint(self.simulator.url, DEMO_USERNAME, DEMO_PASSWORD, demo=True)
