"""An API page as events on job_raw: each row encoded once, sized by the bytes actually sent,
and sliced so that no event exceeds the broker's message limit.

A row is encoded as compact UTF-8 JSON, as job_raw carries it. Scraped text that cannot be
encoded in UTF-8 (lone surrogates) is repaired first, with U+FFFD in their place. A row that
cannot be encoded even then, or that does not fit in one event on its own, travels as a short
excerpt with a note saying why, and the page agent rejects it: no row can hold a page back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec

from jobstream.frames import frame, unframe
from jobstream.records import RawPage
from jobstream.source import Page

# Room left in each event for the record's key, headers and batch overhead.
EVENT_HEADROOM = 1024
# How many times kafka.max_message_bytes of JSON one job_raw event may hold (see `frames`).
RAW_EVENT_FACTOR = 2
# How much of an unusable row travels on, for job_rejects.
EXCERPT_BYTES = 4096

_ENCODER = msgspec.json.Encoder()
_SURROGATE = re.compile("[\ud800-\udfff]")


def repair(value: Any) -> Any:
    """`value` with what JSON cannot carry in UTF-8 replaced; the rest untouched."""
    if type(value) is str:
        return _SURROGATE.sub("\ufffd", value)
    if type(value) is dict:
        return {repair(k): repair(v) for k, v in value.items()}
    if type(value) is list:
        return [repair(v) for v in value]
    return value


def encode_row(row: Any) -> tuple[bytes, str | None]:
    """The row as job_raw carries it, and None; or an excerpt and why the row is unusable."""
    try:
        return _ENCODER.encode(row), None
    except (UnicodeEncodeError, OverflowError, TypeError, ValueError):
        pass
    except RecursionError:
        return _excerpt_of(row), "the row is nested too deeply to encode"
    try:
        return _ENCODER.encode(repair(row)), None
    except RecursionError:
        return _excerpt_of(row), "the row is nested too deeply to encode"
    except (UnicodeEncodeError, OverflowError, TypeError, ValueError) as exc:
        return _excerpt_of(row), f"the row cannot be encoded as JSON: {type(exc).__name__}"


def excerpt(text: bytes | str) -> bytes:
    """At most EXCERPT_BYTES of `text` as a JSON string (cut on a character boundary)."""
    if isinstance(text, bytes):
        text = text[:EXCERPT_BYTES].decode("utf-8", errors="ignore")
    return _ENCODER.encode(_SURROGATE.sub("\ufffd", text[:EXCERPT_BYTES]))


def _excerpt_of(row: Any) -> bytes:
    try:
        return excerpt(repr(row)[:EXCERPT_BYTES])
    except RecursionError:
        return excerpt(f"<{type(row).__name__} nested too deeply to show>")


def slice_page(
    page: Page, *, source: str, fetched_at: str, demo: bool, max_event_bytes: int
) -> list[RawPage]:
    """The page as raw events of at most `max_event_bytes` encoded bytes, each a contiguous
    slice of the page's offsets, the last one ending at the page's next offset."""
    limit = max_event_bytes - EVENT_HEADROOM
    header = _event_size(page, source, fetched_at, demo, [], {})
    rows: list[msgspec.Raw] = []
    unreadable: dict[int, str] = {}
    for index, row in enumerate(page.rows):
        encoded, problem = encode_row(row)
        if problem is None and header + len(encoded) + 1 > limit:
            problem = (
                f"the row is {len(encoded)} bytes as JSON, too large for one Kafka message "
                f"(kafka.max_message_bytes is {max_event_bytes})"
            )
            encoded = excerpt(encoded)
        if problem is not None:
            unreadable[index] = problem
        rows.append(msgspec.Raw(encoded))
    return list(_slices(page, source, fetched_at, demo, rows, unreadable, limit))


def _slices(
    page: Page,
    source: str,
    fetched_at: str,
    demo: bool,
    rows: list[msgspec.Raw],
    unreadable: dict[int, str],
    limit: int,
) -> Iterator[RawPage]:
    start, size = 0, _event_size(page, source, fetched_at, demo, [], {})
    for index, row in enumerate(rows):
        # A note costs its text plus the index; counting it in full keeps the sum an upper bound.
        cost = len(row) + 1 + (len(unreadable[index]) * 3 + 16 if index in unreadable else 0)
        if index > start and size + cost > limit:
            yield _event(page, source, fetched_at, demo, rows, unreadable, start, index)
            start, size = index, _event_size(page, source, fetched_at, demo, [], {})
        size += cost
    yield _event(page, source, fetched_at, demo, rows, unreadable, start, len(rows))


def _event(
    page: Page,
    source: str,
    fetched_at: str,
    demo: bool,
    rows: list[msgspec.Raw],
    unreadable: dict[int, str],
    start: int,
    end: int,
) -> RawPage:
    last = end == len(rows)
    return RawPage(
        task_id=page.task_id,
        source=source,
        offset=page.offset + start,
        next_offset=page.next_offset if last else page.offset + end,
        total=page.total,
        fetched_at=fetched_at,
        demo=demo,
        rows=rows[start:end],
        unreadable={i - start: why for i, why in unreadable.items() if start <= i < end},
    )


def _event_size(
    page: Page,
    source: str,
    fetched_at: str,
    demo: bool,
    rows: list[msgspec.Raw],
    unreadable: dict[int, str],
) -> int:
    empty = RawPage(
        task_id=page.task_id,
        source=source,
        offset=page.offset,
        # The largest offsets any slice can carry, so every slice's header fits in this size.
        next_offset=max(page.next_offset, page.offset + len(page.rows)),
        total=page.total,
        fetched_at=fetched_at,
        demo=demo,
        rows=rows,
        unreadable=unreadable,
    )
    return len(_ENCODER.encode(empty))


_DECODER = msgspec.json.Decoder(RawPage)


def encode_event(event: RawPage) -> bytes:
    """The event as job_raw carries it: its JSON in a zstd frame (`jobstream.frames`)."""
    return frame(_ENCODER.encode(event))


def decode_event(value: bytes) -> RawPage:
    """An event from job_raw, framed or not. Raises msgspec.DecodeError (or, for a broken
    frame, BrokenFrame) for anything that is not one."""
    return _DECODER.decode(unframe(value))


def event_bytes(event: RawPage) -> int:
    """An upper bound of the event's encoded size, counted the way `_slices` counts."""
    header = len(_ENCODER.encode(msgspec.structs.replace(event, rows=[], unreadable={})))
    rows = sum(len(row) + 1 for row in event.rows)
    notes = sum(len(why) * 3 + 16 for why in event.unreadable.values())
    return header + rows + notes


def merge_events(events: list[RawPage], max_event_bytes: int) -> list[RawPage]:
    """Consecutive events joined into as few as fit in `max_event_bytes` each.

    Several API pages then travel as one event, applied in one step (one acknowledgement, one
    progress update). Only an event whose rows fill its offsets is joined to the next: the
    offsets a cursor jump skipped come after an event's rows and must stay at its end.
    """
    return [_join(group) for group in _groups(events, max_event_bytes)]


def frames(events: list[RawPage], max_event_bytes: int) -> Iterator[tuple[RawPage, bytes]]:
    """Consecutive events joined and encoded for job_raw, each value at most `max_event_bytes`
    (less the headroom) as sent.

    Scraped JSON shrinks about ten times in a zstd frame, so an event may hold up to
    RAW_EVENT_FACTOR times `max_event_bytes` of JSON: fewer, larger events cost the broker and
    the page agent less per row. An event whose frame would still be too large (text that does
    not compress) is sent as events of at most `max_event_bytes` of JSON each, and one of those
    whose frame is larger than its JSON (zstd's few bytes a block on incompressible data) as
    its plain JSON, which readers take too.
    """
    limit = max_event_bytes - EVENT_HEADROOM
    for group in _groups(events, RAW_EVENT_FACTOR * max_event_bytes):
        event = _join(group)
        value = encode_event(event)
        if len(value) <= limit:
            yield event, value
            continue
        for part in merge_events(group, max_event_bytes):
            value = encode_event(part)
            yield part, value if len(value) <= limit else _ENCODER.encode(part)


def _groups(events: list[RawPage], max_event_bytes: int) -> Iterator[list[RawPage]]:
    limit = max_event_bytes - EVENT_HEADROOM
    group: list[RawPage] = []
    size = 0
    for event in events:
        cost = event_bytes(event)
        if group and (size + cost > limit or not _joinable(group[-1], event)):
            yield group
            group, size = [], 0
        group.append(event)
        size += cost
    if group:
        yield group


def _joinable(before: RawPage, after: RawPage) -> bool:
    return (
        before.next_offset == before.offset + len(before.rows)
        and after.offset == before.next_offset
        and after.task_id == before.task_id
        and after.source == before.source
        and after.demo == before.demo
    )


def _join(group: list[RawPage]) -> RawPage:
    if len(group) == 1:
        return group[0]
    rows: list[msgspec.Raw] = []
    unreadable: dict[int, str] = {}
    for event in group:
        unreadable.update({len(rows) + i: why for i, why in event.unreadable.items()})
        rows.extend(event.rows)
    first, last = group[0], group[-1]
    return msgspec.structs.replace(
        first,
        next_offset=last.next_offset,
        total=last.total,
        rows=rows,
        unreadable=unreadable,
    )


def unreadable_row(
    task_id: str,
    offset: int,
    total: int,
    *,
    why: str,
    excerpt_text: str,
    source: str,
    fetched_at: str,
    demo: bool,
) -> RawPage:
    """One source row the API cannot serve as JSON, as a raw event the agent rejects."""
    return RawPage(
        task_id=task_id,
        source=source,
        offset=offset,
        next_offset=offset + 1,
        total=total,
        fetched_at=fetched_at,
        demo=demo,
        rows=[msgspec.Raw(excerpt(excerpt_text))],
        unreadable={0: why},
    )
