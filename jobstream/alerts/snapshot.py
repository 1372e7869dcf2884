"""What the alert rules look at: the worker's state at one moment, gathered by whoever wires them.

`None` means "not known right now" (the lag could not be measured, the broker was not probed
yet); an unknown value neither starts nor clears an alert. A task missing from a snapshot is
treated the same way: its alerts hold until it is seen again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from jobstream.records import Progress, TaskStatus


@dataclass(frozen=True, slots=True)
class TaskSnapshot:
    """One task's crawl state, as `crawl_progress` holds it."""

    task_id: str
    status: TaskStatus
    current_offset: int
    total: int
    last_error: str = ""
    consecutive_failures: int = 0

    @property
    def rows_left(self) -> int:
        return max(0, self.total - self.current_offset)

    @classmethod
    def from_progress(cls, progress: Progress) -> TaskSnapshot:
        return cls(
            task_id=progress.task_id,
            status=progress.status,
            current_offset=progress.current_offset,
            total=progress.total,
            last_error=progress.last_error,
            consecutive_failures=progress.consecutive_failures,
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The tasks this worker reports on, the consumer lag on job_data, and the broker's state."""

    tasks: tuple[TaskSnapshot, ...] = ()
    lag: int | None = None
    broker_up: bool | None = None


SnapshotSource = Callable[[], Awaitable[Snapshot]]
"""What `AlertService` calls every `alerts.check_interval` seconds."""
