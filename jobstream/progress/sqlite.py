"""The worker's local SQLite files (the progress mirror, the spool): how one is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_local(path: Path, *schema: str) -> sqlite3.Connection:
    """Open (creating it and its folder) a file written from the event loop's thread, in
    autocommit; WAL lets other processes (a second worker, `sqlite3` in a shell) read it while
    it is written, and synchronous=NORMAL keeps each commit cheap without risking corruption."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for statement in schema:
        db.execute(statement)
    return db
