"""The worker's local SQLite files (the progress mirror, the spool): how one is opened.

They are the service's alone: each file (and the WAL and shared-memory files SQLite makes
next to it, which take the database file's mode) is readable and writable by its owner only,
and a folder made for them is its owner's only too. A folder that already exists is left as it
is: it may be a volume, or a folder shared with other things.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
# The files SQLite keeps next to a database in WAL mode.
COMPANIONS = ("-wal", "-shm")


def open_local(path: Path, *schema: str) -> sqlite3.Connection:
    """Open (creating it and its folder) a file written from the event loop's thread, in
    autocommit; WAL lets other processes (a second worker, `sqlite3` in a shell) read it while
    it is written, and synchronous=NORMAL keeps each commit cheap without risking corruption."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    make_private(path)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for statement in schema:
        db.execute(statement)
    return db


def make_private(path: Path) -> None:
    """Create `path` readable by its owner only, or make it (and its companions) so: files an
    earlier version created with the default mode (0644) are narrowed too."""
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in COMPANIONS)):
        if file.exists() and file.stat().st_mode & 0o777 != PRIVATE_FILE:
            os.chmod(file, PRIVATE_FILE)
