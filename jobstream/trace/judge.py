"""What the pipeline decided about each row, as trace entries: pure functions of what the page
agent and the dedupe agent already hold when they decide.

The page agent's `PageMessages` name the kept rows (their jobs, with ids) and the rejected ones
(their rejects); every other row of the page was filtered. Only those are read again, and only
for what explains them: the two dates and the URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from jobstream.pipeline.messages import PageMessages
from jobstream.records import Candidate, RawPage, Reject
from jobstream.topics import key_partition, key_partitions
from jobstream.trace import entries
from jobstream.trace.entries import (
    Duplicate,
    Filtered,
    Kept,
    PageRecord,
    Published,
    Rejected,
    RowFate,
    Sighting,
)
from jobstream.transform.ids import job_id, job_id_for_text, url_id
from jobstream.transform.mapping import COLLECT_SOURCE, FIELD_MAP, PUBLISH_SOURCE, text_value
from jobstream.transform.outcome import Filtered as FilteredOutcome
from jobstream.transform.outcome import RowContext, row_dates

URL_SOURCE = next(src for src, out in FIELD_MAP.items() if out == "url")
_UNSET = msgspec.UNSET
# A filtered row read for what explains it: its dates and its URL, nothing else decoded.
_Explained = msgspec.defstruct(
    "_Explained",
    [(PUBLISH_SOURCE, Any, _UNSET), (COLLECT_SOURCE, Any, _UNSET), (URL_SOURCE, Any, None)],
)
_EXPLAINED = msgspec.json.Decoder(_Explained)
_ROW = msgspec.json.Decoder()
_REJECT = msgspec.json.Decoder(Reject)


class _SourceOffset(msgspec.Struct):
    source_offset: int


# A job's source_offset, the rest of it skipped (for JSON written otherwise than ours).
_JOB_OFFSET = msgspec.json.Decoder(_SourceOffset)
_ENCODER = msgspec.json.Encoder()
_SOURCE_OFFSET = b'"source_offset":'


@dataclass
class PageTrace:
    """A page's record (for lookups by offset) and its decisions about rows with an id that
    only the page agent makes, by the partition of their ids (for lookups by id)."""

    record: PageRecord
    sightings: dict[int, list[Sighting]] = field(default_factory=dict)


def page_trace(
    page: RawPage,
    first_row: int,
    ctx: RowContext,
    out: PageMessages,
    *,
    source_resets: int,
    at: float,
    partitions: int,
    origin: str = "crawl",
    published_partitions: int | None = None,
) -> PageTrace:
    """The trace of rows[first_row:] of `page`, judged against `ctx` into `out`.

    `partitions` is the partition count of the ids' topics (job_trace); with
    `published_partitions` (dedupe off: the page agent wrote the jobs to job_data itself, which
    has that many partitions) kept rows are recorded as published there."""
    base = page.offset
    first = base + first_row
    task_id = ctx.task_id
    # One slot per offset from `first`; a slot no decision below fills was filtered.
    slots: list[RowFate | None] = [None] * (len(page.rows) - first_row)
    sightings: list[Sighting] = []
    offsets = out.job_offsets
    if len(offsets) != len(out.jobs):
        offsets = [job_offset(value) for _, value in out.jobs]
    kept = Kept()
    for (key, _), offset in zip(out.jobs, offsets, strict=True):
        slots[offset - first] = RowFate(key.decode(), kept)
        if published_partitions is not None:
            decision = Published(key_partition(key, published_partitions))
            sightings.append(Sighting(key.decode(), task_id, offset, at, origin, decision))
    records = out.reject_records if len(out.reject_records) == len(out.rejects) else None
    for index, (key, value) in enumerate(out.rejects):
        offset = int(key.rpartition(b":")[2])
        # The reject as the page agent made it, or as job_rejects holds it: the same values.
        fate = _rejected(records[index] if records is not None else _REJECT.decode(value))
        slots[offset - first] = fate
        if fate.id:
            sightings.append(Sighting(fate.id, task_id, offset, at, origin, fate.fate))  # type: ignore[arg-type]
    cutoff = ctx.oldest.isoformat()
    days = ctx.filter_days
    days_as_text: dict[Any, str] = {}  # a page's rows share a few dates
    for offset, row, outcome in out.filtered:  # read and dated when judged: explained as they are
        fate = _explained(row, outcome, cutoff, days, days_as_text)
        slots[offset - first] = fate
        if fate.id:
            sightings.append(Sighting(fate.id, task_id, offset, at, origin, fate.fate))  # type: ignore[arg-type]
    rows: list[RowFate] = []
    for index, known in enumerate(slots):
        if known is None:  # filtered, and not read by its fields when judged: read again
            offset = first + index
            known = _filtered(bytes(page.rows[first_row + index]), ctx)
            if known.id:
                sightings.append(Sighting(known.id, task_id, offset, at, origin, known.fate))  # type: ignore[arg-type]
        rows.append(known)
    record = PageRecord(
        task_id=ctx.task_id,
        source=page.source,
        source_resets=source_resets,
        first=first,
        next_offset=page.next_offset,
        fetched_at=page.fetched_at,
        at=at,
        filter_days=ctx.filter_days,
        cutoff=cutoff,
        origin=origin,
        rows=rows,
    )
    return PageTrace(record, by_partition(sightings, partitions))


def by_partition(sightings: Iterable[Sighting], partitions: int) -> dict[int, list[Sighting]]:
    out: dict[int, list[Sighting]] = {}
    listed = list(sightings)
    owners = key_partitions([sighting.id.encode() for sighting in listed], partitions)
    for sighting, partition in zip(listed, owners, strict=True):
        out.setdefault(partition, []).append(sighting)
    return out


def job_offset(job: bytes) -> int:
    """A job's `source_offset`, read from its JSON as the pipeline encodes it (`Job`'s field
    order: only `demo` follows it, so the last occurrence is the field, never text)."""
    at = job.rfind(_SOURCE_OFFSET)
    if at >= 0:
        start = at + len(_SOURCE_OFFSET)
        end = job.find(b",", start)
        digits = job[start : end if end >= 0 else job.find(b"}", start)]
        if digits.isdigit():
            return int(digits)
    return _JOB_OFFSET.decode(job).source_offset


def _filtered(raw: bytes, ctx: RowContext) -> RowFate:
    explained = _EXPLAINED.decode(raw)
    url = text_value(getattr(explained, URL_SOURCE))
    if url:
        found = job_id_for_text({"url": url})
    else:
        found = _content_id(raw)
    dates = {}
    for name in (PUBLISH_SOURCE, COLLECT_SOURCE):
        value = getattr(explained, name)
        if value is not _UNSET:
            dates[name] = value
    publish, collect = row_dates(dates, ctx)
    return RowFate(
        found,
        Filtered(
            publish_raw=entries.clipped(dates.get(PUBLISH_SOURCE)),
            publish_date=publish.isoformat() if publish else "",
            collect_raw=entries.clipped(dates.get(COLLECT_SOURCE)),
            collect_date=collect.isoformat() if collect else "",
            cutoff=ctx.oldest.isoformat(),
            filter_days=ctx.filter_days,
        ),
    )


def _explained(
    row: dict[str, Any],
    outcome: FilteredOutcome,
    cutoff: str,
    days: int,
    days_as_text: dict[Any, str],
) -> RowFate:
    """`_filtered` of a row the page agent read by its source fields (`read_for_judging`: the
    description a placeholder only when the row has a URL, which then makes the id) and dated;
    `days_as_text` remembers the dates' ISO text."""
    url = text_value(row.get(URL_SOURCE))
    found = url_id(url) if url else job_id(row)
    publish, collect = outcome.publish, outcome.collect
    publish_text = days_as_text.get(publish)
    if publish_text is None:
        publish_text = days_as_text[publish] = publish.isoformat() if publish else ""
    collect_text = days_as_text.get(collect)
    if collect_text is None:
        collect_text = days_as_text[collect] = collect.isoformat() if collect else ""
    return RowFate(
        found,
        Filtered(
            publish_raw=entries.clipped(row.get(PUBLISH_SOURCE)),
            publish_date=publish_text,
            collect_raw=entries.clipped(row.get(COLLECT_SOURCE)),
            collect_date=collect_text,
            cutoff=cutoff,
            filter_days=days,
        ),
    )


def _content_id(raw: bytes) -> str:
    row = _ROW.decode(raw)
    return job_id(row) if isinstance(row, dict) else ""


def _rejected(reject: Reject) -> RowFate:
    row = reject.row
    found = ""
    if isinstance(row, dict):
        try:
            found = job_id(row)
        except Exception:  # a row the id cannot be made of: found by task and offset only
            found = ""
    excerpt = reject.row_excerpt
    if row is not None:
        try:
            excerpt = _ENCODER.encode(row).decode()
        except (TypeError, ValueError, OverflowError, RecursionError):
            excerpt = repr(row)
    return RowFate(found, Rejected(reject.field, reject.reason, excerpt[: entries.EXCERPT_CHARS]))


def dedupe_trace(
    task_id: str,
    jobs: Iterable[Candidate],
    first: Mapping[bytes, Any],
    published_at: Callable[[bytes], float | None],
    *,
    at: float,
    partition: int,
    window: float,
    origin: str = "crawl",
) -> list[Sighting]:
    """The dedupe agent's decision about each candidate of one message: the first sighting of
    each id in `first` was forwarded to job_data's `partition`, every other candidate is a
    duplicate of the id forwarded at `published_at(id)` (asked after this message's first
    sightings were noted)."""
    out = []
    forwarded: set[bytes] = set()
    for job in jobs:
        key = job.id.encode()
        offset = job.offset if job.offset >= 0 else job_offset(bytes(job.job))
        decision: Published | Duplicate
        if key in first and key not in forwarded:
            forwarded.add(key)
            decision = Published(partition)
        else:
            decision = Duplicate(published_at(key) or at, window)
        out.append(Sighting(job.id, task_id, offset, at, origin, decision))
    return out
