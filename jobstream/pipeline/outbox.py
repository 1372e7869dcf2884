"""A task's raw events between the crawl and job_raw: taken pages waiting to be sent (joined
into as few events as fit), and the events sent but not yet applied."""

from __future__ import annotations

from collections import deque

from jobstream.pipeline.pages import RAW_EVENT_FACTOR, event_bytes, frames
from jobstream.records import RawPage


class Outbox:
    def __init__(self, task_id: str, partition: int) -> None:
        self.task_id = task_id
        self.partition = partition
        self._events: list[RawPage] = []
        self._bytes = 0
        # The next_offset of each event sent and not yet known to be applied, in order.
        self.unapplied: deque[int] = deque()

    def add(self, events: list[RawPage]) -> int:
        """Keep the events of one page (in offset order); the number of rows they hold."""
        self._events.extend(events)
        self._bytes += sum(event_bytes(e) for e in events)
        return sum(len(e.rows) for e in events)

    def full(self, max_event_bytes: int) -> bool:
        """True when what is kept fills the largest event job_raw takes."""
        return self._bytes >= RAW_EVENT_FACTOR * max_event_bytes

    def take(self, max_event_bytes: int) -> list[tuple[RawPage, bytes]]:
        """The events kept so far, joined where they fit and encoded; the outbox emptied."""
        events, self._events, self._bytes = self._events, [], 0
        return list(frames(events, max_event_bytes))
