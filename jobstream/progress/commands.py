"""Commands on `job_commands`: the only way views and the crawl loop change a task's progress.
`Commands` sends them; the `apply_commands` agent (`jobstream.pipeline.commands`) applies each
with `rules.apply_command`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from faust.types import TopicT

from jobstream.config import Config
from jobstream.records import Command, CommandAction
from jobstream.redaction import scrub
from jobstream.topics import partition_for

_ENCODER = msgspec.json.Encoder()


class Commands:
    """Sending commands for tasks to `job_commands`, each to its task's partition."""

    def __init__(self, topic: TopicT, config: Config) -> None:
        self.topic = topic
        self.config = config

    async def send(self, task_id: str, action: CommandAction, **fields: Any) -> None:
        """Send a command for the task (fields as in `Command`); the agent applies it. Its
        error text, kept as the task's last error and shown on /status, holds no secret."""
        if isinstance(fields.get("error"), str):
            fields["error"] = scrub(fields["error"])
        command = Command(
            task_id=task_id,
            action=action,
            at=datetime.now(self.config.tz).isoformat(timespec="seconds"),
            **fields,
        )
        await self.topic.send(
            key=task_id,
            value=_ENCODER.encode(command),
            partition=partition_for(task_id, self.config.kafka.partitions),
        )
