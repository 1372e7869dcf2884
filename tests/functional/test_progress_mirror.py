"""The SQLite mirror on a real file: the seed's schema, and what survives a reopen."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from jobstream.progress.mirror import ProgressMirror
from jobstream.records import Progress


def test_mirror_save_then_reopen_returns_the_same_progress(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "crawl_progress.db"
    saved = Progress(
        task_id="t1",
        current_offset=1500,
        total=2200,
        status="stopped",
        last_error="",
        last_update="2026-01-15T10:30:00+08:00",
        published=800,
        filtered=650,
        rejected=50,
        future_dated=2,
    )
    mirror = ProgressMirror(path)
    mirror.save(saved)
    mirror.save(saved.derive(current_offset=1600))
    mirror.close()

    reopened = ProgressMirror(path)
    assert reopened.load("t1") == saved.derive(current_offset=1600)
    assert reopened.load("unknown") is None


def test_mirror_has_the_seed_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    ProgressMirror(path).save(Progress(task_id="t", current_offset=3, total=9, last_update="x"))
    db = sqlite3.connect(path)
    columns = {row[1]: row[2] for row in db.execute("PRAGMA table_info(crawl_progress)")}
    assert columns["task_id"] == "TEXT" and columns["current_offset"] == "INTEGER"
    assert columns["total"] == "INTEGER" and columns["last_update"] == "TIMESTAMP"
    assert db.execute("SELECT task_id, current_offset, total FROM crawl_progress").fetchall() == [
        ("t", 3, 9)
    ]
