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


def test_mirror_of_the_seed_schema_keeps_every_progress_field_after_the_upgrade(
    tmp_path: Path,
) -> None:
    """A file with only the seed's four columns: its row reads with Progress's defaults, and
    every field of a full Progress survives a save and a reopen."""
    path = tmp_path / "seed.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE crawl_progress (task_id TEXT PRIMARY KEY, current_offset INTEGER, "
        "total INTEGER, last_update TIMESTAMP)"
    )
    db.execute("INSERT INTO crawl_progress VALUES ('old', 40, 90, '2026-01-01 08:00:00')")
    db.commit()
    db.close()

    mirror = ProgressMirror(path)
    assert mirror.load("old") == Progress(
        task_id="old", current_offset=40, total=90, last_update="2026-01-01 08:00:00"
    )
    # A value unlike its default in every field, so a column that drops or mangles one shows.
    full = Progress(
        task_id="t",
        total=10,
        current_offset=9,
        status="error",
        last_update="u",
        last_error="it's broken",
        consecutive_failures=1,
        stuck_since="s",
        failing_offset=0,
        cursor_anomalies=2,
        last_anomaly="a",
        source_resets=3,
        source="demo",
        published=4,
        filtered=5,
        rejected=6,
        skipped=7,
        future_dated=8,
        duplicates=9,
        last_error_at="e",
        last_success_at="o",
        resolved_error="r",
        resolved_error_at="ra",
        resolved_at="rb",
        last_reset_at="z",
    )
    assert all(
        getattr(full, name) != getattr(Progress(task_id="t"), name)
        for name in Progress.__struct_fields__
        if name != "task_id"
    ), "every field set apart from its default"
    mirror.save(full)
    mirror.close()
    assert ProgressMirror(path).load("t") == full


def test_mirror_columns_are_those_earlier_versions_created(tmp_path: Path) -> None:
    """Derived from Progress, the columns keep the declarations earlier versions wrote, so a
    new file and an upgraded one agree (type, NOT NULL, default), the seed's four included."""
    path = tmp_path / "p.db"
    ProgressMirror(path).save(Progress(task_id="t"))
    db = sqlite3.connect(path)
    columns = {
        name: (kind, bool(notnull), default, bool(pk))
        for _, name, kind, notnull, default, pk in db.execute("PRAGMA table_info(crawl_progress)")
    }
    assert columns == {
        "task_id": ("TEXT", False, None, True),
        "current_offset": ("INTEGER", False, None, False),
        "total": ("INTEGER", False, None, False),
        "last_update": ("TIMESTAMP", False, None, False),
        "status": ("TEXT", True, "'idle'", False),
        "last_error": ("TEXT", True, "''", False),
        "published": ("INTEGER", True, "0", False),
        "filtered": ("INTEGER", True, "0", False),
        "rejected": ("INTEGER", True, "0", False),
        "future_dated": ("INTEGER", True, "0", False),
        "source": ("TEXT", True, "''", False),
        "skipped": ("INTEGER", True, "0", False),
        "consecutive_failures": ("INTEGER", True, "0", False),
        "stuck_since": ("TEXT", True, "''", False),
        "failing_offset": ("INTEGER", False, None, False),
        "cursor_anomalies": ("INTEGER", True, "0", False),
        "last_anomaly": ("TEXT", True, "''", False),
        "source_resets": ("INTEGER", True, "0", False),
        "duplicates": ("INTEGER", True, "0", False),
        "last_error_at": ("TEXT", True, "''", False),
        "last_success_at": ("TEXT", True, "''", False),
        "resolved_error": ("TEXT", True, "''", False),
        "resolved_error_at": ("TEXT", True, "''", False),
        "resolved_at": ("TEXT", True, "''", False),
        "last_reset_at": ("TEXT", True, "''", False),
    }
