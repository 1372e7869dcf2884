"""What the rows of one raw page become: encoded messages for job_data and job_rejects, and the
counts. Each row is decoded, judged and encoded on its own, so whatever one row holds, it can
only fail itself: it becomes a reject with the reason, and the page goes on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from jobstream.limits import EXCERPT_BYTES, MESSAGE_HEADROOM, REJECT_ROW_BYTES
from jobstream.pipeline.pages import read_row
from jobstream.pipeline.rows import read_for_judging, with_description
from jobstream.progress.rules import Counts
from jobstream.records import RawPage, Reject
from jobstream.transform.outcome import Filtered, Kept, Rejected, RowContext, classify_row

_ENCODER = msgspec.json.Encoder()
_ROW_DECODER = msgspec.json.Decoder()

Message = tuple[bytes, bytes]  # (key, value)


@dataclass
class PageMessages:
    """The messages of one page, in source order, and what its rows became."""

    jobs: list[Message] = field(default_factory=list)
    # The source offset of each job, in the same order (the dedupe agent counts by them).
    job_offsets: list[int] = field(default_factory=list)
    rejects: list[Message] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    # Reject reasons by field, for the page's one summary log line.
    reasons: Counter[str] = field(default_factory=Counter)
    # (source offset, reason) of each reject, for the DEBUG log.
    details: list[tuple[int, str]] = field(default_factory=list)
    internal_errors: int = 0
    trace: bool = False
    # With `trace`: each filtered row read by its source fields, as (source offset, the fields,
    # the outcome with its two dates), for the trace to explain without reading the row again.
    filtered: list[tuple[int, dict[str, Any], Filtered]] = field(default_factory=list)
    # With `trace`: each of `rejects` before it was encoded, in the same order.
    reject_records: list[Reject] = field(default_factory=list)


def page_messages(
    page: RawPage, first_row: int, ctx: RowContext, max_message_bytes: int, trace: bool = False
) -> PageMessages:
    """Judge rows[first_row:] of `page`; `ctx` carries the task, the page's "now" and the rule.
    With `trace`, `out.filtered` and `out.reject_records` keep what the trace needs of the
    filtered and the rejected rows."""
    out = PageMessages()
    out.trace = trace
    published = filtered = future_dated = 0
    limit = max_message_bytes - MESSAGE_HEADROOM
    for index in range(first_row, len(page.rows)):
        offset = page.offset + index
        raw = page.rows[index]
        try:
            why = page.unreadable.get(index)
            if why is not None:
                _reject(out, ctx, offset, Rejected(why, "row"), None, raw)
                continue
            # Most rows: read without the keys no job holds, the description left as it came
            # when the job can take it so (jobstream.pipeline.rows).
            fast = read_for_judging(raw)
            row: Any
            description: bytes | None = None
            if fast is not None:
                row, description = fast
            else:
                row, unusable = read_row(raw)
                if unusable is not None:
                    _reject(out, ctx, offset, Rejected(unusable, "row"), None, raw)
                    continue
            outcome = classify_row(row, offset, ctx)
            if isinstance(outcome, Filtered):
                filtered += 1
                if trace and fast is not None:
                    out.filtered.append((offset, row, outcome))
            elif isinstance(outcome, Kept):
                value = _ENCODER.encode(outcome.job)
                if description is not None:
                    value = with_description(value, description)
                if fast is not None:
                    row = None  # job_rejects keeps the whole row: read again below if needed
                if len(value) > limit:
                    too_large = Rejected(
                        f"the job is {len(value)} bytes as JSON, too large for one Kafka "
                        f"message (kafka.max_message_bytes is {max_message_bytes})",
                        "row",
                    )
                    _reject(out, ctx, offset, too_large, _whole(row, raw), raw)
                    continue
                out.jobs.append((outcome.job.id.encode(), value))
                out.job_offsets.append(offset)
                published += 1
                future_dated += outcome.suspicious_future
            else:
                _reject(out, ctx, offset, outcome, row if fast is None else _whole(None, raw), raw)
        except Exception as exc:  # a defect, met by this row only
            out.internal_errors += 1
            problem = Rejected(f"internal error: {type(exc).__name__}: {exc}", "row")
            _reject(out, ctx, offset, problem, None, raw)
    out.counts = Counts(
        published=published,
        filtered=filtered,
        rejected=len(out.rejects),
        future_dated=future_dated,
    )
    return out


def _whole(row: Any, raw: msgspec.Raw) -> Any:
    """The row as a value, read whole if it was read without its description."""
    return row if row is not None else read_row(raw)[0]


def _reject(
    out: PageMessages,
    ctx: RowContext,
    offset: int,
    rejected: Rejected,
    row: Any,
    raw: msgspec.Raw,
) -> None:
    whole = row is not None and len(raw) <= REJECT_ROW_BYTES
    reject = Reject(
        task_id=ctx.task_id,
        source_offset=offset,
        field=rejected.field,
        reason=rejected.reason,
        row=row if whole else None,
        row_excerpt="" if whole else _excerpt_text(raw),
        crawl_time=ctx.crawl_time,
    )
    out.rejects.append((f"{ctx.task_id}:{offset}".encode(), _ENCODER.encode(reject)))
    if out.trace:
        out.reject_records.append(reject)
    out.reasons[rejected.field] += 1
    out.details.append((offset, rejected.reason))


def _excerpt_text(raw: msgspec.Raw) -> str:
    """The start of a row too large (or too broken) to keep whole: the text of an excerpt the
    crawl already cut, or the start of the row's JSON."""
    data = bytes(raw)
    text: Any = None
    if data[:1] == b'"':
        try:
            text = _ROW_DECODER.decode(data)
        except msgspec.DecodeError:
            pass
    if not isinstance(text, str):
        text = data[:EXCERPT_BYTES].decode("utf-8", errors="ignore")
    return str(text[:EXCERPT_BYTES])
