"""The built-in Bazhuayu API simulator, served in-process when `api.base_url` is `demo`."""

from __future__ import annotations

import logging

from mode import Service

from jobstream.simulator.options import SimulatorConfig
from jobstream.simulator.server import SimulatorServer

logger = logging.getLogger(__name__)

# Demo data keeps arriving, so a user watching /status sees incremental crawling at work.
DEMO_TOTAL = 5000
DEMO_GROWTH_PER_MINUTE = 60.0
DEMO_USERNAME = DEMO_PASSWORD = "demo"


class EmbeddedSimulator(Service):
    """Serves the simulator on a free loopback port; `url` is where the crawler finds it."""

    def __init__(self, task_ids: tuple[str, ...], **kwargs: object) -> None:
        self.server = SimulatorServer(
            SimulatorConfig(
                task_ids=task_ids,
                total=DEMO_TOTAL,
                grow_per_minute=DEMO_GROWTH_PER_MINUTE,
                username=DEMO_USERNAME,
                password=DEMO_PASSWORD,
            )
        )
        super().__init__(**kwargs)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return self.server.url

    async def on_start(self) -> None:
        await self.server.start()
        logger.warning(
            "api.base_url is 'demo': crawling the built-in simulator at %s; "
            'every message is marked "demo": true',
            self.url,
        )

    async def on_stop(self) -> None:
        await self.server.stop()
