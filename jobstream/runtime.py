"""What one worker runs beside Faust's own services, built and wired in one place.

The runtime owns the broker probe, the progress store, the sending of commands and of pages to
job_raw (with its spool), the crawler and the alert service: it creates them, hands each the
others it needs, and starts and stops them with the worker (the app starts it as its last
dependency). Agents and views are given the runtime; none of them looks its collaborators up on
the app.

    Bazhuayu API --Crawler--> RawSender --> job_raw --apply_pages--> job_data / job_rejects
                                                          └--> ProgressStore (table + mirror)
    Crawler <-- ProgressStore.changed: the crawl waits on the store, not on the agent
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any, cast

from mode import Service, ServiceT

from jobstream.alerts import AlertService, Snapshot, TaskSnapshot
from jobstream.app import JobstreamApp
from jobstream.broker.probe import BrokerProbe
from jobstream.config import Config
from jobstream.pipeline.crawl import Crawler
from jobstream.pipeline.raw_sender import RawSender
from jobstream.progress.commands import Commands
from jobstream.progress.store import ProgressStore
from jobstream.topics import commands_topic, raw_topic
from jobstream.worker_state import WorkerState


class Runtime(Service):
    """One worker's crawl, progress, senders, probe and alerts.

    `table` is the `crawl_progress` table (a plain dict for an app that only serves its views,
    as the in-process tests run it)."""

    def __init__(self, app: JobstreamApp, table: MutableMapping[str, Any], **kwargs: Any):
        self.app = app
        self.config: Config = app.settings
        config = self.config
        self.worker = WorkerState(app)
        self.probe = BrokerProbe(config, app.kafka_story)
        self.store = ProgressStore(table, config.database.path, config.api.source)
        self.commands = Commands(commands_topic, config)
        self.sender = RawSender(config, raw_topic, self.store, self.probe, self.worker)
        self.crawler = Crawler(config, self.store, self.sender, self.commands, self.worker)
        self.alerts = AlertService(config.alerts, self.snapshot, tz=config.tz)
        # (mode's stubs describe a receiver as a union of callables mypy cannot match)
        app.on_rebalance_complete.connect(cast(Any, self._on_rebalance_complete))
        super().__init__(**kwargs)

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        return [self.probe, self.alerts]

    async def on_stop(self) -> None:
        self.store.close()

    async def snapshot(self) -> Snapshot:
        """What the alert service looks at: the progress of the tasks this worker owns, the
        consumer lag and whether the broker answers. What is not known yet (the worker is
        starting, the broker not probed) stays unknown, which neither raises nor clears an
        alert."""
        probe = self.probe
        probing = probe.started and not probe.should_stop
        tasks: tuple[TaskSnapshot, ...] = ()
        if self.app.tables_recovered():
            tasks = tuple(
                TaskSnapshot.from_progress(self.store.current(task_id))
                for task_id in self.worker.owned_tasks()
            )
        return Snapshot(
            tasks=tasks,
            lag=(await probe.lag()).total if probing else None,
            broker_up=probe.broker_up if probing else None,
        )

    async def _on_rebalance_complete(
        self, sender: Any, *args: Any, signal: Any, **kwargs: Any
    ) -> None:
        # Every run stopped when the rebalance began: the tasks owned now are crawled at
        # once, not at their next tick.
        self.crawler.run_now()
