"""A large API page becomes several raw events below the broker's message limit."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

from jobstream.pipeline.crawl import MAX_EVENT_BYTES, split_page
from jobstream.source import Page

NOW = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def test_split_page_small_page_is_one_event_with_the_api_cursor() -> None:
    page = Page(
        "t",
        offset=200,
        next_offset=300,
        total=1000,
        rest_total=700,
        rows=[{"i": i} for i in range(100)],
    )
    (event,) = split_page(page, NOW, demo=True)
    assert (event.offset, event.next_offset, len(event.rows), event.demo) == (200, 300, 100, True)


def test_split_page_large_rows_give_contiguous_slices_under_the_limit() -> None:
    rows = [{"i": i, "acb22a": "职位描述" * 20_000} for i in range(30)]  # ~240 KB each
    page = Page("t", offset=1000, next_offset=1030, total=5000, rest_total=3970, rows=rows)
    events = list(split_page(page, NOW, demo=False))

    assert len(events) > 1
    assert events[0].offset == 1000 and events[-1].next_offset == 1030
    for before, after in itertools.pairwise(events):
        assert before.next_offset == after.offset
    assert [row["i"] for e in events for row in e.rows] == list(range(30))
    for event in events:
        assert event.next_offset - event.offset == len(event.rows)
        assert len(json.dumps(event.rows, ensure_ascii=False).encode()) <= MAX_EVENT_BYTES
