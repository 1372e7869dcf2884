"""Commands on `job_commands`: the only way views and the crawl loop change a task's progress."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from faust import StreamT

from jobstream.app import app
from jobstream.progress import state, store
from jobstream.records import Command
from jobstream.topics import commands_topic, partition_for

logger = logging.getLogger(__name__)

# Set by a start command; the crawl loop on this worker waits on it between ticks.
wakeup = asyncio.Event()


async def send_command(
    task_id: str,
    action: str,
    *,
    status: str | None = None,
    error: str | None = None,
    total: int | None = None,
) -> None:
    command = Command(
        task_id=task_id,
        action=action,
        at=datetime.now(app.settings.tz).isoformat(timespec="seconds"),
        status=status,
        error=error,
        total=total,
    )
    await commands_topic.send(
        key=task_id, value=command, partition=partition_for(task_id, app.settings.kafka.partitions)
    )


@app.agent(commands_topic)
async def apply_commands(commands: StreamT[Command]) -> None:
    async for command in commands:
        before = store.current(command.task_id)
        after = state.apply_command(before, command)
        store.save(after)
        if before.status != after.status:
            logger.info(
                "task_id=%s status %s -> %s (%s)",
                command.task_id,
                before.status,
                after.status,
                command.action,
            )
        if command.action == "start":
            wakeup.set()
