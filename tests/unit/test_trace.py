"""The trace's pure parts: what each row of a page became (from the page agent's own messages),
the dedupe agent's decision about each candidate, how batches are stored and found by id, the
answer made of them, and the replay's command on the counts."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from jobstream.pipeline.messages import page_messages
from jobstream.pipeline.outbox import Outbox
from jobstream.progress import rules
from jobstream.records import Candidate, Command, Progress, RawPage
from jobstream.source import Page
from jobstream.topics import key_partition
from jobstream.trace import answer, entries
from jobstream.trace.entries import Duplicate, Filtered, Kept, Published, Rejected, Sighting
from jobstream.trace.judge import dedupe_trace, job_offset, page_trace
from jobstream.transform.ids import job_id
from jobstream.transform.outcome import RowContext

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 1, 15, 10, 30, tzinfo=TZ)
CTX = RowContext(task_id="t", now=NOW, filter_days=7, demo=False)


def row(i: int, **fields: object) -> dict:
    base = {
        "aca112": f"司机{i}",
        "aae397": "今天",
        "Collect_time": "2026-01-15 09:00:00",
        "ACE760": f"https://jobs.example.com/{i}",
    }
    return {**base, **fields}


ROWS = [
    row(0),
    row(1, aae397="10天前"),  # filtered by its publish date
    row(2, Collect_time="2026-01-01 08:00:00"),  # filtered by its collect date
    row(3, aae397="面议"),  # rejected, with an id (its URL)
    "not an object",  # rejected, no id
    row(5, aae397="2020-01-01", Collect_time=1_600_000_000_000),  # filtered by both
]


def event(next_offset: int = 106) -> RawPage:
    """Offsets 100..105 as the crawl sends them; 106.. jumped over up to `next_offset`."""
    box = Outbox("t", 0, source="demo", demo=False, max_message_bytes=1_000_000)
    box.add_page(Page("t", 100, next_offset, 1000, 0, ROWS), NOW.isoformat())
    ((taken, _),) = box.take()
    return taken


def test_trace_page_each_offset_its_fate_and_its_dates() -> None:
    page = event(next_offset=110)
    out = page_messages(page, 0, CTX, 1_000_000)
    trace = page_trace(page, 0, CTX, out, source_resets=2, at=5.0, partitions=3)
    record = trace.record
    assert (record.first, record.next_offset, record.skipped_from) == (100, 110, 106)
    assert (record.source_resets, record.cutoff, record.filter_days) == (2, "2026-01-08", 7)
    fates = [type(r.fate) for r in record.rows]
    assert fates == [Kept, Filtered, Filtered, Rejected, Rejected, Filtered]
    ids = [r.id for r in record.rows]
    assert ids[:4] + ids[5:] == [job_id(r) for i, r in enumerate(ROWS) if i != 4]
    assert ids[4] == ""  # not an object: found by task and offset only
    told = [answer.filtered_detail(r.fate) for r in record.rows if isinstance(r.fate, Filtered)]
    assert [t.decided_by for t in told] == [
        ["publish_date"], ["collect_time"], ["publish_date", "collect_time"]
    ]  # fmt: skip
    assert (told[0].publish_raw, told[0].publish_date) == ("10天前", "2026-01-05")
    assert (told[2].collect_raw, told[2].collect_date) == (1_600_000_000_000, "2020-09-13")
    rejected = record.rows[3].fate
    assert (
        isinstance(rejected, Rejected) and rejected.field == "aae397" and "面议" in rejected.excerpt
    )
    # What the id's owner keeps: filtered and rejected rows with an id, by their partition.
    kept = {(s.offset, type(s.decision)) for batch in trace.sightings.values() for s in batch}
    assert kept == {(101, Filtered), (102, Filtered), (103, Rejected), (105, Filtered)}
    for partition, batch in trace.sightings.items():
        assert all(key_partition(s.id.encode(), 3) == partition for s in batch)


def test_trace_page_without_dedupe_kept_rows_are_published_there() -> None:
    page = event()
    out = page_messages(page, 2, CTX, 1_000_000)  # from offset 102: 100..101 applied before
    trace = page_trace(
        page, 2, CTX, out, source_resets=0, at=5.0, partitions=3, published_partitions=3
    )
    assert trace.record.first == 102 and len(trace.record.rows) == 4
    page0 = page_trace(event(), 0, CTX, page_messages(event(), 0, CTX, 1_000_000),
                       source_resets=0, at=5.0, partitions=3, published_partitions=3)  # fmt: skip
    published = [
        s for b in page0.sightings.values() for s in b if isinstance(s.decision, Published)
    ]
    assert [(s.offset, s.decision.partition) for s in published] == [
        (100, key_partition(job_id(ROWS[0]).encode(), 3))
    ]


def test_trace_job_offset_is_the_field_not_text_that_looks_like_it() -> None:
    job = json.dumps(
        {"description": 'a "source_offset":999, trap', "source_offset": 42, "demo": True},
        ensure_ascii=False,
    ).encode()
    assert job_offset(job) == 42


def test_trace_dedupe_first_sighting_published_others_duplicates() -> None:
    def job(n: int, offset: int) -> Candidate:
        return Candidate(f"id-{n}", json.dumps({"source_offset": offset}).encode())  # type: ignore[arg-type]

    jobs = [job(1, 10), job(2, 11), job(1, 12), job(3, 13)]
    earlier = {b"id-3": 1.5}
    first = {b"id-1": b"", b"id-2": b""}
    out = dedupe_trace(
        "t", jobs, first, lambda key: earlier.get(key, 9.0), at=9.0, partition=1, window=60.0
    )
    assert [(s.offset, s.decision) for s in out] == [
        (10, Published(1)),
        (11, Published(1)),
        (12, Duplicate(9.0, 60.0)),  # of offset 10, in the same message
        (13, Duplicate(1.5, 60.0)),  # of the sighting forwarded at 1.5
    ]


def sighting(job_id: str, offset: int, at: float, decision: object) -> Sighting:
    return Sighting(job_id, "t", offset, at, "crawl", decision)  # type: ignore[arg-type]


def test_trace_batches_found_by_id_prefix_only_at_a_boundary() -> None:
    a, b = "aaaaaaaa-1111", "bbbbbbbb-2222"
    value = entries.encode_batch(
        7.5, [sighting(a, 1, 7.5, Published(0)), sighting(b, 2, 7.5, Published(0))]
    )
    assert entries.batch_time(value) == 7.5 and entries.batch_count(value) == 2
    assert entries.batch_may_hold(value, entries.id_prefix(b.encode()))
    assert not entries.batch_may_hold(value, b"aaaabbbb")  # spans two prefixes
    assert [s.id for s in entries.decode_batch(value)] == [a, b]


def test_trace_answer_duplicate_points_at_its_first_and_page_entries_fill_gaps() -> None:
    import asyncio

    first = sighting("x", 1, 100.0, Published(2))
    dup = sighting("x", 7, 150.0, Duplicate(100.0, 60.0))

    async def locate(partition: int, job: str, at: float, task: str, offset: int):
        return (40 + offset, 100_000)

    told = asyncio.run(answer.from_sightings([dup, first], "job_data", TZ, locate))
    assert told[0].fate == "duplicate" and told[0].duplicate is not None
    assert (told[0].duplicate.first.offset, told[0].duplicate.first.job_data.offset) == (1, 41)
    assert told[0].duplicate.window_ends.startswith("1970-01-01T08:02:40")
    page = event(next_offset=110)
    out = page_messages(page, 0, CTX, 1_000_000)
    record = page_trace(page, 0, CTX, out, source_resets=0, at=5.0, partitions=3).record
    assert answer.from_page(record, 100, TZ).fate == "pending"
    skipped = answer.from_page(record, 108, TZ)
    assert skipped.skipped is not None and (
        skipped.skipped.from_offset,
        skipped.skipped.to_offset,
    ) == (106, 110)
    # published_jobs keeps the first time to the millisecond: 100.0004 is named as 100.000.
    exact = sighting("y", 2, 100.0004, Published(1))
    rounded = sighting("y", 8, 150.0, Duplicate(100.0, 60.0))
    named = asyncio.run(answer.from_sightings([rounded, exact], "job_data", TZ, locate))
    assert named[0].duplicate is not None and named[0].duplicate.first.offset == 2
    far = sighting("z", 3, 100.002, Published(1))
    unnamed = asyncio.run(answer.from_sightings([rounded, far], "job_data", TZ, locate))
    assert unnamed[0].duplicate is not None and unnamed[0].duplicate.first.offset is None
    merged = answer.merged([answer.from_page(record, 101, TZ)], told)
    assert [e.offset for e in merged] == [7, 1, 101]


def test_trace_replayed_command_moves_rows_out_of_filtered_and_rejected() -> None:
    before = Progress(task_id="t", source="demo", current_offset=10, published=2, filtered=6,
                      rejected=2)  # fmt: skip
    replayed = Command(task_id="t", action="replayed", at="x", source="demo", source_resets=0,
                       filtered=3, rejected=1)  # fmt: skip
    after = rules.apply_command(before, replayed)
    assert (after.filtered, after.rejected, after.published) == (3, 1, 2)
    # Without dedupe the replay counts its published rows itself.
    direct = rules.apply_command(before, Command(
        task_id="t", action="replayed", at="x", source="demo", source_resets=0, filtered=3,
        rejected=0, published=3,
    ))  # fmt: skip
    assert (direct.filtered, direct.published) == (3, 5)
    other = Command(
        task_id="t", action="replayed", at="x", source="demo", source_resets=1, filtered=3
    )
    assert rules.apply_command(before, other) == before  # of progress set aside since
    told = Command(task_id="t", action="replay_deduped", at="x", published=3, duplicates=0)
    assert rules.apply_command(before, told) == before
