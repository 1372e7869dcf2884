"""The local spool on a real SQLite file: order, the size limit, a reopen, and removal of only
what was acknowledged."""

from __future__ import annotations

from pathlib import Path

from jobstream import metrics
from jobstream.config import Config
from jobstream.pipeline.spool import Spool, SpoolSize


def _fill(spool: Spool, task_id: str, offsets: list[int], size: int = 10) -> None:
    for offset in offsets:
        spool.put(task_id, offset, offset + size, size, f"{task_id}:{offset}".encode())


def test_spool_first_returns_each_task_in_offset_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", max_bytes=1 << 20)
    _fill(spool, "a", [20, 0, 10])  # taken out of order: a restart refetched a page
    _fill(spool, "b", [0])
    events = spool.first("a", 10)
    assert [e.offset for e in events] == [0, 10, 20]
    assert [e.value for e in events] == [b"a:0", b"a:10", b"a:20"]
    assert [e.offset for e in spool.first("a", 2)] == [0, 10]
    assert spool.span("a") == (0, 30) and spool.span("c") is None
    assert spool.size("a") == SpoolSize(pages=3, rows=30, bytes=len(b"a:0a:10a:20"))
    assert spool.size() == SpoolSize(pages=4, rows=40, bytes=len(b"a:0a:10a:20b:0"))


def test_spool_full_refuses_more_but_always_takes_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", max_bytes=100)
    assert spool.fits(1000)  # empty: one event is taken however large (never a deadlock)
    spool.put("a", 0, 10, 10, b"x" * 60)
    assert spool.fits(40) and not spool.fits(41)
    spool.put("a", 10, 20, 10, b"x" * 40)
    assert not spool.fits(1)
    spool.remove(spool.first("a", 1))
    assert spool.fits(60) and not spool.fits(61)


def test_spool_reopened_holds_the_same_events_and_sizes(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "s.sqlite3"
    spool = Spool(path, max_bytes=1 << 20)
    _fill(spool, "a", [0, 10])
    _fill(spool, "b", [5])
    spool.close()
    again = Spool(path, max_bytes=1 << 20)
    assert again.size("a") == SpoolSize(2, 20, len(b"a:0a:10"))
    assert again.size() == SpoolSize(3, 30, len(b"a:0a:10b:5"))
    assert [e.value for e in again.first("a", 10)] == [b"a:0", b"a:10"]
    assert metrics.SPOOL_PAGES._value.get() == 3  # the gauges follow the file


def test_spool_remove_forgets_only_the_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", max_bytes=1 << 20)
    _fill(spool, "a", [0, 10, 20, 30])
    first_two = spool.first("a", 2)
    spool.remove(first_two)  # acknowledged by the broker
    assert [e.offset for e in spool.first("a", 10)] == [20, 30]
    assert spool.size("a").pages == 2
    spool.close()
    assert [e.offset for e in Spool(tmp_path / "s.sqlite3", 1 << 20).first("a", 10)] == [20, 30]


def test_spool_drop_applied_forgets_what_progress_has_passed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", max_bytes=1 << 20)
    _fill(spool, "a", [0, 10, 20])
    _fill(spool, "b", [0])
    # Offset 15: the event 10..20 overlaps it and stays (the agent applies it from 15 on).
    assert spool.drop_applied("a", 15) == 1
    assert [e.offset for e in spool.first("a", 10)] == [10, 20]
    assert spool.size("b").pages == 1
    assert spool.discard("a") == SpoolSize(2, 20, len(b"a:10a:20"))
    assert spool.size("a") == SpoolSize() and spool.size().pages == 1


def test_spool_path_is_next_to_the_progress_mirror() -> None:
    config = Config()
    assert config.spool.enabled and config.spool.max_bytes == 256 * 1024 * 1024
    assert config.spool_path == Path("data/crawl_progress-spool.sqlite3")


def test_spool_shared_file_each_worker_sees_the_others_events(tmp_path: Path) -> None:
    """Workers on one data volume share the file: a task's new owner drains what the old one
    spooled, and the size limit counts both."""
    path = tmp_path / "s.sqlite3"
    old_owner, new_owner = Spool(path, max_bytes=100), Spool(path, max_bytes=100)
    old_owner.put("a", 0, 10, 10, b"x" * 60)
    assert new_owner.size("a") == SpoolSize(1, 10, 60) and not new_owner.fits(41)
    new_owner.remove(new_owner.first("a", 10))
    assert old_owner.size() == SpoolSize()
