"""The trace's records and how they are stored: each decision about a row (a `Sighting`, found
by job id) and what became of each offset of an applied page (a `PageRecord`, found by task and
offset).

Decisions are stored in batches, one per message they were made for, compressed: a batch's
value starts with its time and an 8-byte prefix of each job id it holds, so that a lookup by id
looks through the prefixes (bytes.find, no decoding) and decompresses only the batches that may
hold the id, and pruning reads only the times. A row costs about 40 bytes in memory this way;
one table entry per id would cost several times that, and one changelog message per row on the
hot path.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

from jobstream.frames import frame, unframe

# Longest raw text kept of a date value or a rejected row: the trace explains, job_rejects
# keeps the whole row (key `task_id:offset`).
RAW_CHARS = 200
EXCERPT_CHARS = 500


class Kept(msgspec.Struct, frozen=True, array_like=True, tag="kept"):
    """Inside the window: a candidate for job_data; the dedupe agent decides (`Published` or
    `Duplicate`)."""


class Filtered(msgspec.Struct, frozen=True, array_like=True, tag="filtered"):
    """Outside the window: each date as the row gave it and as it was read, and the cutoff
    (the oldest day kept) on the day the page was fetched."""

    publish_raw: Any
    publish_date: str
    collect_raw: Any
    collect_date: str
    cutoff: str
    filter_days: int


class Rejected(msgspec.Struct, frozen=True, array_like=True, tag="rejected"):
    """Could not be used: the field at fault, why, and the start of the row."""

    field: str
    reason: str
    excerpt: str


class Published(msgspec.Struct, frozen=True, array_like=True, tag="published"):
    """Forwarded to job_data's `partition` (its offset is found when asked)."""

    partition: int


class Duplicate(msgspec.Struct, frozen=True, array_like=True, tag="duplicate"):
    """Not forwarded: the id was forwarded at `first_at` (Unix seconds), within `window`."""

    first_at: float
    window: float


RowDetail = Kept | Filtered | Rejected
Decision = Filtered | Rejected | Published | Duplicate


class Sighting(msgspec.Struct, frozen=True, array_like=True):
    """One decision about one row with a job id."""

    id: str
    task_id: str
    offset: int
    at: float  # Unix seconds: when it was decided
    origin: str  # "crawl" or "replay"
    decision: Decision


class RowFate(msgspec.Struct, frozen=True, array_like=True):
    """What became of one offset of a page, as the page agent saw it; `id` "" for a row that
    has none (not a JSON object)."""

    id: str
    fate: RowDetail


class PageRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What became of offsets `first` .. `next_offset`-1 of a task: `rows` one per offset from
    `first`, then the offsets the API's cursor jumped over."""

    task_id: str
    source: str
    source_resets: int
    first: int
    next_offset: int
    fetched_at: str
    at: float  # Unix seconds: when the page was judged
    filter_days: int
    cutoff: str
    origin: str
    rows: list[RowFate]

    @property
    def skipped_from(self) -> int:
        return self.first + len(self.rows)


_ENCODER = msgspec.json.Encoder()
_SIGHTINGS = msgspec.json.Decoder(list[Sighting])
_PAGE = msgspec.json.Decoder(PageRecord)
_BATCH_MAGIC = b"TS1"
_BATCH_HEAD = struct.Struct("<dI")
_PAGE_MAGIC = b"TP1"
_PAGE_HEAD = struct.Struct("<dqq")
PREFIX = 8


def id_prefix(job_id: bytes) -> bytes:
    """What a batch keeps of each id to be found by (ids are UUIDs: 32 bits of the hash)."""
    return job_id[:PREFIX].ljust(PREFIX, b"\0")


def encode_batch(at: float, sightings: list[Sighting]) -> bytes:
    prefixes = b"".join(id_prefix(s.id.encode()) for s in sightings)
    head = _BATCH_MAGIC + _BATCH_HEAD.pack(at, len(sightings))
    return head + prefixes + frame(_ENCODER.encode(sightings))


def batch_time(value: bytes) -> float:
    """When the batch's decisions were made (Unix seconds)."""
    return float(_BATCH_HEAD.unpack_from(value, len(_BATCH_MAGIC))[0])


def batch_count(value: bytes) -> int:
    """How many decisions the batch holds."""
    return int(_BATCH_HEAD.unpack_from(value, len(_BATCH_MAGIC))[1])


def batch_may_hold(value: bytes, prefix: bytes) -> bool:
    """Whether one of the batch's ids starts with `prefix` (then decode it to be sure)."""
    start = len(_BATCH_MAGIC) + _BATCH_HEAD.size
    count = _BATCH_HEAD.unpack_from(value, len(_BATCH_MAGIC))[1]
    end = start + PREFIX * count
    at = value.find(prefix, start, end)
    while at >= 0:
        if (at - start) % PREFIX == 0:
            return True
        at = value.find(prefix, at + 1, end)
    return False


def decode_batch(value: bytes) -> list[Sighting]:
    start = len(_BATCH_MAGIC) + _BATCH_HEAD.size
    count = _BATCH_HEAD.unpack_from(value, len(_BATCH_MAGIC))[1]
    return _SIGHTINGS.decode(unframe(value[start + PREFIX * count :]))


def is_batch(value: Any) -> bool:
    return isinstance(value, bytes) and value[:3] == _BATCH_MAGIC


def encode_page(record: PageRecord) -> bytes:
    head = _PAGE_MAGIC + _PAGE_HEAD.pack(record.at, record.first, record.next_offset)
    return head + frame(_ENCODER.encode(record))


def page_span(value: bytes) -> tuple[float, int, int]:
    """(when judged, first offset, next offset) of an encoded page record."""
    at, first, next_offset = _PAGE_HEAD.unpack_from(value, len(_PAGE_MAGIC))
    return float(at), int(first), int(next_offset)


def decode_page(value: bytes) -> PageRecord:
    return _PAGE.decode(unframe(value[len(_PAGE_MAGIC) + _PAGE_HEAD.size :]))


def is_page(value: Any) -> bool:
    return isinstance(value, bytes) and value[:3] == _PAGE_MAGIC


def clipped(value: Any) -> Any:
    """A raw value from the API as the trace keeps it: text cut to RAW_CHARS, any other JSON
    value that is short as it is, else its JSON text cut."""
    if isinstance(value, str):
        return value[:RAW_CHARS]
    if value is None or isinstance(value, bool | int | float):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63:
            return str(value)[:RAW_CHARS]
        return value
    try:
        text = _ENCODER.encode(value).decode()
    except (TypeError, ValueError, OverflowError, RecursionError):
        text = repr(value)
    return text[:RAW_CHARS]
