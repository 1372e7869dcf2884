"""The SQLite mirror of crawl progress (seed §5.1 schema plus the counters, status and source).

Written after every applied page, once the page's messages are acknowledged, so it never claims
more than the broker holds. It is read when the table has no entry for a task (a new or wiped
broker) or holds less than the mirror (a changelog recovered short).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import msgspec

from jobstream.progress.sqlite import open_local
from jobstream.records import Progress

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS crawl_progress (
    task_id TEXT PRIMARY KEY,
    current_offset INTEGER,
    total INTEGER,
    last_update TIMESTAMP
)
"""
# Columns beyond the seed's, added to a table of any earlier version.
_EXTRA_COLUMNS = {
    "status": "TEXT NOT NULL DEFAULT 'idle'",
    "last_error": "TEXT NOT NULL DEFAULT ''",
    "published": "INTEGER NOT NULL DEFAULT 0",
    "filtered": "INTEGER NOT NULL DEFAULT 0",
    "rejected": "INTEGER NOT NULL DEFAULT 0",
    "future_dated": "INTEGER NOT NULL DEFAULT 0",
    # The API the offset refers to; '' in databases written before it was recorded.
    "source": "TEXT NOT NULL DEFAULT ''",
    "skipped": "INTEGER NOT NULL DEFAULT 0",
    "consecutive_failures": "INTEGER NOT NULL DEFAULT 0",
    "stuck_since": "TEXT NOT NULL DEFAULT ''",
    "failing_offset": "INTEGER",
    "cursor_anomalies": "INTEGER NOT NULL DEFAULT 0",
    "last_anomaly": "TEXT NOT NULL DEFAULT ''",
    "source_resets": "INTEGER NOT NULL DEFAULT 0",
    "duplicates": "INTEGER NOT NULL DEFAULT 0",
}
_COLUMNS = Progress.__struct_fields__


class ProgressMirror:
    """One SQLite file, opened on first use, written from the event loop thread only."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = open_local(self.path, _SCHEMA)
            present = {row[1] for row in db.execute("PRAGMA table_info(crawl_progress)")}
            for column, declaration in _EXTRA_COLUMNS.items():
                if column not in present:
                    db.execute(f"ALTER TABLE crawl_progress ADD COLUMN {column} {declaration}")
            self._db = db
        return self._db

    def load(self, task_id: str) -> Progress | None:
        row = (
            self._connection()
            .execute(
                f"SELECT {', '.join(_COLUMNS)} FROM crawl_progress WHERE task_id = ?", (task_id,)
            )
            .fetchone()
        )
        if row is None:
            return None
        values: dict[str, Any] = {
            column: value for column, value in zip(_COLUMNS, row, strict=True) if value is not None
        }
        try:
            return msgspec.convert(values, Progress)
        except msgspec.ValidationError as exc:
            logger.warning("task_id=%s the SQLite mirror row is unusable: %s", task_id, exc)
            return None

    def save(self, progress: Progress) -> None:
        values = [getattr(progress, column) for column in _COLUMNS]
        self._connection().execute(
            f"INSERT OR REPLACE INTO crawl_progress ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in _COLUMNS)})",
            values,
        )

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()
