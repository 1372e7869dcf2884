"""What the alert service (jobstream.alerts) sees of this worker: the progress of the tasks it
owns, the consumer lag and whether the broker answers, read where /status reads them. Anything
not known yet (the worker is starting, the broker was not probed) is left unknown, which
neither raises nor clears an alert."""

from __future__ import annotations

from jobstream.alerts import Snapshot, SnapshotSource, TaskSnapshot
from jobstream.app import JobstreamApp
from jobstream.broker.probe import BrokerProbe
from jobstream.web.forwarding import worker_started


def worker_snapshot(app: JobstreamApp, probe: BrokerProbe) -> SnapshotSource:
    async def snapshot() -> Snapshot:
        probing = probe.started and not probe.should_stop
        tasks: tuple[TaskSnapshot, ...] = ()
        if worker_started(app):
            store = app.progress_store
            tasks = tuple(
                TaskSnapshot.from_progress(store.current(task_id))
                for task_id in app.crawler.owned_tasks()
            )
        return Snapshot(
            tasks=tasks,
            lag=(await probe.lag()).total if probing else None,
            broker_up=probe.broker_up if probing else None,
        )

    return snapshot
