"""The commands agent: applies each command on `job_commands` to its task's progress, and asks
the crawler to crawl at once on a start (`jobstream.progress.commands` sends them)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgspec
from faust import StreamT
from faust.types import AgentT, AppT

from jobstream.progress import rules
from jobstream.progress.store import ProgressStore
from jobstream.records import Command
from jobstream.topics import commands_topic

logger = logging.getLogger(__name__)

_DECODER = msgspec.json.Decoder(Command)


def declare(app: AppT, store: ProgressStore, crawl_now: Callable[[], None]) -> AgentT:
    """The agent that applies every command to the progress of its task in `store`; on a
    start, `crawl_now()`."""

    @app.agent(commands_topic, name="jobstream.pipeline.commands.apply_commands")
    async def apply_commands(events: StreamT[bytes]) -> None:
        async for value in events:
            try:
                command = _DECODER.decode(value)
            except msgspec.DecodeError as exc:
                logger.error(
                    "an event on %s is not a command and was skipped: %s", commands_topic, exc
                )
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
                crawl_now()

    return apply_commands
