"""The SQLite mirror of crawl progress (seed §5.1 schema plus the counters and status).

Written after every applied page, once the page's messages are acknowledged, so it never claims
more than the broker holds. It is read when the table has no entry for a task (a new or wiped
broker) or holds less than the mirror (a changelog recovered short).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from jobstream.records import Progress

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS crawl_progress (
    task_id TEXT PRIMARY KEY,
    current_offset INTEGER,
    total INTEGER,
    last_update TIMESTAMP,
    status TEXT NOT NULL DEFAULT 'idle',
    last_error TEXT NOT NULL DEFAULT '',
    published INTEGER NOT NULL DEFAULT 0,
    filtered INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    future_dated INTEGER NOT NULL DEFAULT 0
)
"""
_COLUMNS = (
    "task_id",
    "current_offset",
    "total",
    "last_update",
    "status",
    "last_error",
    "published",
    "filtered",
    "rejected",
    "future_dated",
)

_UPSERT = (
    f"INSERT OR REPLACE INTO crawl_progress ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)


class ProgressMirror:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection used from the event loop thread only; writes are a single small row.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def load(self, task_id: str) -> Progress | None:
        row = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM crawl_progress WHERE task_id = ?", (task_id,)
        ).fetchone()
        if row is None:
            return None
        values = dict(zip(_COLUMNS, row, strict=True))
        values["last_update"] = values["last_update"] or ""
        values["total"] = values["total"] or 0
        values["current_offset"] = values["current_offset"] or 0
        return Progress(**values)

    def save(self, progress: Progress) -> None:
        values = [getattr(progress, column) for column in _COLUMNS]
        self._db.execute(_UPSERT, values)

    def close(self) -> None:
        self._db.close()
