"""Commands on `job_commands`: the only way views and the crawl loop change a task's progress."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import msgspec
from faust import StreamT

from jobstream.app import app
from jobstream.progress import rules
from jobstream.records import Command, CommandAction
from jobstream.redaction import scrub
from jobstream.topics import commands_topic, partition_for

logger = logging.getLogger(__name__)

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Command)


async def send_command(task_id: str, action: CommandAction, **fields: Any) -> None:
    """Send a command for the task (fields as in `Command`); the agent applies it. Its error
    text, kept as the task's last error and shown on /status, holds no secret."""
    if isinstance(fields.get("error"), str):
        fields["error"] = scrub(fields["error"])
    command = Command(
        task_id=task_id,
        action=action,
        at=datetime.now(app.settings.tz).isoformat(timespec="seconds"),
        **fields,
    )
    await commands_topic.send(
        key=task_id,
        value=_ENCODER.encode(command),
        partition=partition_for(task_id, app.settings.kafka.partitions),
    )


@app.agent(commands_topic)
async def apply_commands(events: StreamT[bytes]) -> None:
    store = app.progress_store
    async for value in events:
        try:
            command = _DECODER.decode(value)
        except msgspec.DecodeError as exc:
            logger.error("an event on %s is not a command and was skipped: %s", commands_topic, exc)
            continue
        before = store.current(command.task_id)
        after = rules.apply_command(before, command)
        store.save(after)
        if before.status != after.status:
            logger.info(
                "task_id=%s status %s -> %s (%s)",
                command.task_id,
                before.status,
                after.status,
                command.action if command.run is None else f"run {command.run}",
            )
        if command.action == "start":
            app.crawler.wakeup.set()
