"""The local spool: job_raw events fetched while Kafka is unreachable, kept in a SQLite file
next to the progress mirror (`spool.max_bytes` at most) until they are sent.

An event is stored as the exact bytes job_raw takes (its `fetched_at`, the 7-day rule's "now",
travels inside them), in the order the crawl took it. Sending drains a task's events in offset
order and removes each only once the broker has acknowledged it; the stored progress never
counts a spooled event (the page agent applies it from job_raw like any other). The file
survives a restart: the next run of the task sends what it holds first.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from jobstream import metrics
from jobstream.progress.sqlite import open_local

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spooled_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    size INTEGER NOT NULL,
    value BLOB NOT NULL
)
"""
_INDEX = 'CREATE INDEX IF NOT EXISTS spooled_events_order ON spooled_events (task_id, "offset", id)'


@dataclass(frozen=True)
class SpooledEvent:
    id: int
    task_id: str
    offset: int
    next_offset: int
    rows: int
    value: bytes


@dataclass(frozen=True)
class SpoolSize:
    pages: int = 0
    rows: int = 0
    bytes: int = 0


class Spool:
    """One SQLite file, written from the event loop thread only. `max_bytes` bounds the bytes
    of the events it holds; one event is always taken into an empty spool, however large.

    Sizes are read from the file each time, not kept: workers sharing a data volume share the
    file, and the worker a task moves to drains what another spooled for it."""

    def __init__(self, path: str | Path, max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = open_local(self.path, _SCHEMA, _INDEX)
            self._db = db
            self._publish()
        return self._db

    def size(self, task_id: str | None = None) -> SpoolSize:
        """What the spool holds for `task_id`, or for every task (asking creates no file)."""
        if self._db is None and not self.path.exists():
            return SpoolSize()
        query = (
            "SELECT COUNT(*), COALESCE(SUM(rows), 0), COALESCE(SUM(size), 0) FROM spooled_events"
        )
        args: tuple[str, ...] = ()
        if task_id is not None:
            query, args = f"{query} WHERE task_id = ?", (task_id,)
        pages, rows, size = self._connection().execute(query, args).fetchone()
        return SpoolSize(int(pages), int(rows), int(size))

    def fits(self, nbytes: int) -> bool:
        """Whether an event of `nbytes` may be added without passing `max_bytes`."""
        held = self.size().bytes
        return held == 0 or held + nbytes <= self.max_bytes

    def put(self, task_id: str, offset: int, next_offset: int, rows: int, value: bytes) -> None:
        """Keep one event (after the task's others); the caller checked `fits`."""
        self._connection().execute(
            'INSERT INTO spooled_events (task_id, "offset", next_offset, rows, size, value) '
            "VALUES (?, ?, ?, ?, ?, ?)",
            (task_id, offset, next_offset, rows, len(value), value),
        )
        self._publish()

    def first(self, task_id: str, limit: int) -> list[SpooledEvent]:
        """The task's first `limit` events, in offset order."""
        return [
            SpooledEvent(*row)
            for row in self._connection().execute(
                'SELECT id, task_id, "offset", next_offset, rows, value FROM spooled_events '
                'WHERE task_id = ? ORDER BY "offset", id LIMIT ?',
                (task_id, limit),
            )
        ]

    def span(self, task_id: str) -> tuple[int, int] | None:
        """The first offset and the last next_offset the task's events cover, or None."""
        row = (
            self._connection()
            .execute(
                'SELECT MIN("offset"), MAX(next_offset) FROM spooled_events WHERE task_id = ?',
                (task_id,),
            )
            .fetchone()
        )
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

    def remove(self, events: list[SpooledEvent]) -> None:
        """Forget events the broker has acknowledged (or that are no longer needed)."""
        db = self._connection()
        db.execute("BEGIN")
        try:
            db.executemany("DELETE FROM spooled_events WHERE id = ?", [(e.id,) for e in events])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self._publish()

    def drop_applied(self, task_id: str, current_offset: int) -> int:
        """Forget the task's events wholly below `current_offset` (applied already); how many."""
        dropped = self._connection().execute(
            "DELETE FROM spooled_events WHERE task_id = ? AND next_offset <= ?",
            (task_id, current_offset),
        )
        if dropped.rowcount:
            self._publish()
        return int(dropped.rowcount)

    def discard(self, task_id: str) -> SpoolSize:
        """Forget every event of the task; what was dropped."""
        dropped = self.size(task_id)
        self._connection().execute("DELETE FROM spooled_events WHERE task_id = ?", (task_id,))
        self._publish()
        return dropped

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def _publish(self) -> None:
        total = self.size()
        metrics.SPOOL_PAGES.set(total.pages)
        metrics.SPOOL_ROWS.set(total.rows)
        metrics.SPOOL_BYTES.set(total.bytes)
