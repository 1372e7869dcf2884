"""The worker's local files (the progress mirror, the spool, and the WAL files SQLite keeps
next to them) are readable by the service's user only, whatever the umask; files an earlier
version left world-readable are narrowed when opened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobstream.pipeline.spool import Spool
from jobstream.progress.mirror import ProgressMirror
from jobstream.records import Progress


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask a service may run with: files default to 0666, folders 0777."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_local_files_mirror_and_spool_private(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data" / "deeper"
    mirror = ProgressMirror(data / "crawl_progress.db")
    mirror.save(Progress(task_id="t1", current_offset=10, total=20))
    spool = Spool(data / "crawl_progress-spool.sqlite3", max_bytes=1 << 20)
    spool.put("t1", 0, 10, 10, b"page")
    files = sorted(data.iterdir())
    assert {f.name for f in files} >= {
        "crawl_progress.db",
        "crawl_progress.db-wal",
        "crawl_progress.db-shm",
        "crawl_progress-spool.sqlite3",
        "crawl_progress-spool.sqlite3-wal",
    }
    assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert mode(data) == 0o700
    mirror.close()
    spool.close()


def test_local_files_left_world_readable_are_narrowed(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)  # a folder the operator made (a volume)
    path = tmp_path / "crawl_progress.db"
    first = ProgressMirror(path)
    first.save(Progress(task_id="t1", current_offset=1, total=2))
    for file in (path, path.with_name(path.name + "-wal")):
        os.chmod(file, 0o644)  # as the earlier versions left them
    first.close()
    again = ProgressMirror(path)
    assert again.load("t1") is not None
    assert mode(path) == 0o600
    assert all(mode(f) == 0o600 for f in tmp_path.iterdir())
    assert mode(tmp_path) == 0o755  # a folder that was there is not changed
    again.close()
