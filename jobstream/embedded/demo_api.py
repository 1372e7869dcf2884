"""The built-in Bazhuayu API simulator, served in-process when `api.base_url` is `demo`.

Its rows are kept in the data directory (`DEMO_STATE_FILE` next to `database.path`): a worker
started again crawls the same source, grown from where it stood, so the progress kept in the
SQLite mirror still fits it and the crawl resumes instead of starting over.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mode import Service

from jobstream.simulator.options import SimulatorConfig
from jobstream.simulator.server import SimulatorServer

logger = logging.getLogger(__name__)

# Demo data keeps arriving, so a user watching /status sees incremental crawling at work.
DEMO_TOTAL = 5000
DEMO_GROWTH_PER_MINUTE = 60.0
DEMO_USERNAME = DEMO_PASSWORD = "demo"
DEMO_STATE_FILE = "demo-api.jsonl"


class EmbeddedSimulator(Service):
    """Serves the simulator on a free loopback port; `url` is where the crawler finds it.
    `data_dir`: where its rows are kept across restarts (None: in memory only)."""

    def __init__(
        self, task_ids: tuple[str, ...], data_dir: Path | None = None, **kwargs: object
    ) -> None:
        self.state_file = data_dir / DEMO_STATE_FILE if data_dir is not None else None
        self.server = SimulatorServer(
            SimulatorConfig(
                task_ids=task_ids,
                total=DEMO_TOTAL,
                grow_per_minute=DEMO_GROWTH_PER_MINUTE,
                username=DEMO_USERNAME,
                password=DEMO_PASSWORD,
                state_file=str(self.state_file) if self.state_file is not None else None,
            )
        )
        super().__init__(**kwargs)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return self.server.url

    async def on_start(self) -> None:
        await self.server.start()
        state = self.server.state
        rows = ", ".join(f"{task.total}" for task in state.tasks.values())
        kept = f"; kept in {self.state_file}" if self.state_file is not None else ""
        logger.info(
            "demo mode (api.base_url: demo): crawling the built-in Bazhuayu API simulator at %s: "
            "invented job postings, %s rows%s, %.0f more a minute%s. About 2%% of the rows are "
            "bad on purpose (unparseable dates), to show how they end in job_rejects. Every "
            'message is marked "demo": true. For the real API set api.base_url (API_BASE_URL) '
            "and the credentials",
            self.url,
            rows,
            " (restored)" if state.restored else "",
            DEMO_GROWTH_PER_MINUTE,
            kept,
        )

    async def on_stop(self) -> None:
        await self.server.stop()
