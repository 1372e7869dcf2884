"""The collect day depends on the string and the zone alone: contexts of other pages (another
"now") may share the memo and decide as a fresh context does."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from jobstream.transform.outcome import RowContext, classify_row

ZONE = ZoneInfo("Asia/Shanghai")


def row(collect: str) -> dict[str, str]:
    return {"aae397": "2026-01-10", "Collect_time": collect, "ACE760": "https://x.cn/1"}


def test_memo_shared_across_days_decides_as_a_fresh_context() -> None:
    shared: dict = {}
    first = datetime(2026, 1, 12, 23, 59, tzinfo=ZONE)
    values = ["2026-01-11 10:00:00", "2026/1/11 10:00", "2026-01-11T10:00:00+00:00", "刚刚", "x"]
    for now in (first, first + timedelta(days=1), first + timedelta(days=9)):
        ctx = RowContext(task_id="t", now=now, filter_days=7, demo=False, collect_memo=shared)
        fresh = RowContext(task_id="t", now=now, filter_days=7, demo=False)
        for value in values:
            assert classify_row(row(value), 0, ctx) == classify_row(row(value), 0, fresh)
    assert shared


def test_memo_shared_keeps_no_traceback_of_the_page_that_failed() -> None:
    shared: dict = {}
    ctx = RowContext(
        task_id="t", now=datetime(2026, 1, 12, 12, tzinfo=ZONE), filter_days=7, demo=False,
        collect_memo=shared,
    )  # fmt: skip
    classify_row(row("not a date"), 0, ctx)
    [failure] = shared.values()
    assert isinstance(failure, Exception)
    assert failure.__traceback__ is None and failure.__cause__ is None
    assert "not a date" in str(failure)
