"""The SQLite mirror on a real file: the seed's schema, and what survives a reopen."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from msgspec.structs import replace

from jobstream.progress.mirror import ProgressMirror
from jobstream.records import Progress


def test_mirror_save_then_reopen_returns_the_same_progress(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "crawl_progress.db"
    saved = Progress(
        task_id="t1",
        source="https://openapi.bazhuayu.com",
        current_offset=1500,
        total=2200,
        status="stopped",
        last_error="",
        last_update="2026-01-15T10:30:00+08:00",
        published=780,
        duplicates=20,
        filtered=650,
        rejected=50,
        future_dated=2,
        skipped=0,
        consecutive_failures=3,
        stuck_since="2026-01-15T10:00:00+08:00",
        failing_offset=1500,
        cursor_anomalies=1,
        last_anomaly="2026-01-15T09:00:00+08:00 cursor jump",
    )
    mirror = ProgressMirror(path)
    mirror.save(saved)
    mirror.save(replace(saved, current_offset=1600))
    mirror.close()

    reopened = ProgressMirror(path)
    assert reopened.load("t1") == replace(saved, current_offset=1600)
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


def test_mirror_of_an_earlier_version_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE crawl_progress (task_id TEXT PRIMARY KEY, current_offset INTEGER, "
        "total INTEGER, last_update TIMESTAMP, status TEXT NOT NULL DEFAULT 'idle')"
    )
    db.execute("INSERT INTO crawl_progress VALUES ('t', 700, 900, '2026-01-01', 'idle')")
    db.commit()
    db.close()

    loaded = ProgressMirror(path).load("t")
    # Its source was never recorded: the store will not resume from it (see rules.resume).
    assert loaded == Progress(
        task_id="t", current_offset=700, total=900, last_update="2026-01-01", source=""
    )
