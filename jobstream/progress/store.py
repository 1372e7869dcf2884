"""Reading and writing a task's progress: the `crawl_progress` table backed by the SQLite mirror.

Progress belongs to one API (`source`): what the table or the mirror holds for another one is
set aside, once, with a log line saying so. Whoever waits for a task to advance (the crawl, for
the pages it sent) awaits `changed`, woken by every save: the agents write, the crawl waits,
and nothing calls back up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import msgspec

from jobstream.progress import rules
from jobstream.progress.mirror import ProgressMirror
from jobstream.records import Progress

logger = logging.getLogger(__name__)

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Progress)


class ProgressStore:
    """The progress of every task of one source. `current` may be called anywhere; `save` only
    from an agent (Faust's rule for tables: their changelog follows the agent's partition)."""

    def __init__(self, table: MutableMapping[str, Any], mirror_path: str | Path, source: str):
        self.table = table
        self.source = source
        self.mirror = ProgressMirror(mirror_path)
        self._mirrored: dict[str, Progress | None] = {}
        self._noted: set[str] = set()
        # Per task, set by a save and replaced by a fresh one: a waiter that took the current
        # one is woken by the next save.
        self._saved: dict[str, asyncio.Event] = {}

    def current(self, task_id: str) -> Progress:
        """The task's progress as this worker knows it."""
        progress, notes = rules.resume(
            self._from_table(task_id), self._from_mirror(task_id), task_id, self.source
        )
        for note in notes:
            if note not in self._noted:
                self._noted.add(note)
                logger.warning("task_id=%s %s", task_id, note)
        return progress

    def save(self, progress: Progress) -> None:
        """Write the table and the mirror."""
        self.table[progress.task_id] = _ENCODER.encode(progress)
        self.mirror.save(progress)
        self._mirrored[progress.task_id] = progress
        saved = self._saved.pop(progress.task_id, None)
        if saved is not None:
            saved.set()

    def changed(self, task_id: str) -> asyncio.Event:
        """An event set by the task's next save on this worker."""
        saved = self._saved.get(task_id)
        if saved is None:
            saved = self._saved[task_id] = asyncio.Event()
        return saved

    def close(self) -> None:
        self.mirror.close()

    def _from_table(self, task_id: str) -> Progress | None:
        value = self.table.get(task_id)
        if value is None:
            return None
        try:
            return _DECODER.decode(value)
        except msgspec.DecodeError as exc:
            note = f"the table's entry cannot be read ({exc}); not resumed from"
            if note not in self._noted:
                self._noted.add(note)
                logger.warning("task_id=%s %s", task_id, note)
            return None

    def _from_mirror(self, task_id: str) -> Progress | None:
        if task_id not in self._mirrored:
            self._mirrored[task_id] = self.mirror.load(task_id)
        return self._mirrored[task_id]
