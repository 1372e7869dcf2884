"""Reading and writing a task's progress: the `crawl_progress` table backed by the SQLite mirror."""

from __future__ import annotations

from functools import cache

from jobstream.app import app
from jobstream.progress import state
from jobstream.progress.mirror import ProgressMirror
from jobstream.records import Progress
from jobstream.topics import crawl_progress

_mirrored: dict[str, Progress | None] = {}


@cache
def mirror() -> ProgressMirror:
    return ProgressMirror(app.settings.database.path)


def _mirrored_progress(task_id: str) -> Progress | None:
    if task_id not in _mirrored:
        _mirrored[task_id] = mirror().load(task_id)
    return _mirrored[task_id]


def current(task_id: str) -> Progress:
    """The task's progress as this worker knows it (readable anywhere, writable only in agents)."""
    return state.newest(crawl_progress.get(task_id), _mirrored_progress(task_id), task_id)


def save(progress: Progress) -> None:
    """Write the table and the mirror. Only agents may call this (Faust's rule for tables)."""
    crawl_progress[progress.task_id] = progress
    mirror().save(progress)
    _mirrored[progress.task_id] = progress
