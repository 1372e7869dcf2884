"""What the views read of this worker's crawl: a task's progress, the rows it fetched, the
tasks it owns. The pipeline's interface in one place, so that a change there is one line here.
"""

from __future__ import annotations

from faust.types import AppT

from jobstream.pipeline import crawl
from jobstream.progress import store
from jobstream.records import Progress


def progress(app: AppT, task_id: str) -> Progress:
    """The task's progress as this worker knows it (its owner knows it best)."""
    return store.current(task_id)


def rows_fetched(app: AppT, task_id: str) -> int:
    """Source rows this worker fetched for the task since it started."""
    return crawl.fetched.get(task_id, 0)


def owned_tasks(app: AppT) -> list[str]:
    """The tasks whose partition is assigned to this worker."""
    return crawl.owned_tasks()
