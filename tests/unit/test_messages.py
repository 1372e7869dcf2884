"""What one raw page's rows become: each row alone, whatever it holds, ends as a job, a
filtered count, or a reject with its reason; no row can fail another."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from jobstream.limits import REJECT_ROW_BYTES
from jobstream.pipeline import messages
from jobstream.pipeline.messages import page_messages
from jobstream.pipeline.outbox import Outbox
from jobstream.records import RawPage
from jobstream.source import Page
from jobstream.transform.outcome import RowContext

NOW = datetime(2026, 1, 15, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
CTX = RowContext(task_id="t", now=NOW, filter_days=7, demo=False)


def row(i: int, **fields: object) -> dict:
    base = {
        "aca112": f"司机{i}",
        "aae397": "今天",
        "Collect_time": "2026-01-15 09:00:00",
        "ACE760": f"https://jobs.example.com/{i}",
    }
    return {**base, **fields}


def event_of(page: Page, limit: int) -> RawPage:
    """The page as the crawl sends it to job_raw, in one event."""
    box = Outbox("t", 0, source="demo", demo=False, max_message_bytes=limit)
    box.add_page(page, NOW.isoformat())
    ((event, _),) = box.take()
    return event


def judge(rows: list, limit: int = 1_000_000):
    event = event_of(Page("t", 100, 100 + len(rows), 1000, 0, rows), limit)
    return page_messages(event, 0, CTX, limit)


def values(pairs: list[tuple[bytes, bytes]]) -> list[dict]:
    return [json.loads(value) for _, value in pairs]


def test_page_messages_mixed_page_every_row_accounted_for() -> None:
    rows = [
        row(0),
        row(1, aae397="2020-01-01"),  # filtered
        row(2, aae397="面议"),  # rejected: aae397
        "not an object",  # rejected: row
        row(4, acb22a=json.loads('"坏\\ud800字"')),  # published, repaired
        row(5, acb241=8000, Experience=True, aac011=["本科", "硕士"]),
    ]
    out = judge(rows)
    assert (out.counts.published, out.counts.filtered, out.counts.rejected) == (3, 1, 2)
    jobs = {job["source_offset"]: job for job in values(out.jobs)}
    assert sorted(jobs) == [100, 104, 105]
    assert jobs[104]["description"] == "坏\ufffd字"
    assert (jobs[105]["salary"], jobs[105]["experience"]) == ("8000", "true")
    assert jobs[105]["education"] == '["本科","硕士"]'
    assert [key.decode() for key, _ in out.jobs] == [jobs[o]["id"] for o in (100, 104, 105)]
    rejects = {r["source_offset"]: r for r in values(out.rejects)}
    assert rejects[102]["field"] == "aae397" and rejects[102]["row"]["aae397"] == "面议"
    assert rejects[103] == {
        "task_id": "t",
        "source_offset": 103,
        "field": "row",
        "reason": rejects[103]["reason"],
        "row": "not an object",
        "row_excerpt": "",
        "crawl_time": NOW.isoformat(timespec="seconds"),
    }
    assert [k.decode() for k, _ in out.rejects] == ["t:102", "t:103"]
    assert out.reasons == {"aae397": 1, "row": 1}


def test_page_messages_row_too_large_for_a_message_is_rejected_with_an_excerpt() -> None:
    huge = row(0, acb22a="职位描述" * 100_000)  # 1.2 MB of UTF-8
    out = judge([huge, row(1)])
    assert out.counts.published == 1 and out.counts.rejected == 1
    (reject,) = values(out.rejects)
    assert "too large for one Kafka message" in reject["reason"] and reject["row"] is None
    assert 0 < len(reject["row_excerpt"]) <= 4096
    assert all(len(value) < 1_000_000 for _, value in out.rejects + out.jobs)


def test_page_messages_job_over_the_limit_is_rejected_but_fits_the_raw_event() -> None:
    big = row(0, acb22a="描" * 40_000)  # 120 KB: fits a raw event of 200 KB, not a job of 100 KB
    event = event_of(Page("t", 0, 1, 1, 0, [big]), 200_000)
    out = page_messages(event, 0, CTX, 100_000)
    (reject,) = values(out.rejects)
    assert "the job is" in reject["reason"] and out.counts.published == 0
    # A rejected row above the cap is kept as an excerpt, so the reject stays small.
    assert len(msgspec.json.encode(big)) > REJECT_ROW_BYTES and reject["row"] is None


def test_page_messages_defect_on_one_row_rejects_only_that_row(monkeypatch) -> None:
    # A fault that no input produces today: a defect in the row rules themselves.
    real = messages.classify_row

    def broken(row_value, offset, ctx):
        if offset == 101:
            raise KeyError("boom")
        return real(row_value, offset, ctx)

    monkeypatch.setattr(messages, "classify_row", broken)
    out = judge([row(0), row(1), row(2)])
    assert (out.counts.published, out.counts.rejected, out.internal_errors) == (2, 1, 1)
    (reject,) = values(out.rejects)
    assert reject["source_offset"] == 101 and "internal error: KeyError" in reject["reason"]
    assert reject["row_excerpt"]


@pytest.mark.parametrize("first_row", [0, 2])
def test_page_messages_starts_at_first_row(first_row: int) -> None:
    event = event_of(Page("t", 10, 14, 14, 0, [row(i) for i in range(4)]), 1_000_000)
    out = page_messages(event, first_row, CTX, 1_000_000)
    assert [job["source_offset"] for job in values(out.jobs)] == list(range(10 + first_row, 14))
