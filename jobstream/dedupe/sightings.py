"""Dedupe decisions and their encodings, as pure functions.

The dedupe key is the job id: UUID5 of the normalized URL when the row has one, else of its text
fields (`jobstream.transform.ids`), so URL-less postings with identical text are one posting too.
A kept job is a first sighting unless its id was forwarded to job_data no longer than the
window ago, or earlier in the same batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

from jobstream.frames import frame, unframe
from jobstream.limits import MESSAGE_HEADROOM
from jobstream.records import Candidate, Candidates, Progress

Message = tuple[bytes, bytes]  # (key, value)

# Room left in a job_candidates message for its key, the envelope and the record overhead. A
# job alone is at most kafka.max_message_bytes - 1024 (pipeline.messages.MESSAGE_HEADROOM);

_ENCODER = msgspec.json.Encoder()
_CANDIDATES = msgspec.json.Decoder(Candidates)
_ENTRY = msgspec.json.Decoder(tuple[float, int])
_MARK = msgspec.json.Decoder(int)


def candidate_messages(
    progress: Progress,
    jobs: Iterable[Message],
    partitions_of: Callable[[list[bytes]], list[int]],
    max_message_bytes: int,
    offsets: Iterable[int] | None = None,
) -> list[Message]:
    """A page's kept jobs (key = id, value = job JSON; `offsets`: each one's source offset),
    counted out of `progress`, as job_candidates messages: grouped by the partition of their
    ids (`partitions_of` the ids, in order), in source order, as few messages as fit; each
    keyed by its first job's id, so its key falls in its partition too. The values are zstd
    frames of `records.Candidates` JSON: job JSON shrinks more than ten times, and the broker
    stores and serves that much less for the extra hop (as on job_raw)."""
    limit = max_message_bytes - MESSAGE_HEADROOM
    groups: dict[int, list[list[bytes]]] = {}
    firsts: dict[int, list[bytes]] = {}
    sizes: dict[int, int] = {}
    jobs = list(jobs)
    each_offset = list(offsets) if offsets is not None else [-1] * len(jobs)
    each_partition = partitions_of([key for key, _ in jobs])  # a page's ids hashed at once
    for (key, value), offset, partition in zip(jobs, each_offset, each_partition, strict=True):
        # A Candidate as JSON, in pieces joined once; job ids are UUIDs
        # (jobstream.transform.ids), nothing to escape.
        tail = b",%d]," % offset
        size = len(key) + len(value) + 4 + len(tail)  # ["key",value,offset],
        chunks = groups.get(partition)
        if chunks is None or sizes[partition] + size > limit:
            chunks = groups.setdefault(partition, [])
            chunks.append([])
            firsts.setdefault(partition, []).append(key)
            sizes[partition] = 0
        chunks[-1].extend((b'["', key, b'",', value, tail))
        sizes[partition] += size
    head = (
        _ENCODER.encode(
            Candidates(
                task_id=progress.task_id,
                source=progress.source,
                source_resets=progress.source_resets,
                jobs=[],
            )
        ).removesuffix(b"[]}")
        + b"["
    )
    out = []
    for partition, chunks in groups.items():
        for key, chunk in zip(firsts[partition], chunks, strict=True):
            chunk[-1] = chunk[-1][:-1]  # the last job's comma
            out.append((key, frame(b"".join((head, *chunk, b"]}")))))
    return out


def decode_candidates(value: bytes) -> Candidates:
    """A job_candidates message; the jobs are views into the decompressed JSON. Raises
    msgspec.DecodeError (BrokenFrame for a broken frame) for anything else."""
    return _CANDIDATES.decode(unframe(value))


@dataclass
class Sorting:
    """What became of one message's candidates: the first sightings, to forward (id -> job,
    in order), and how many were duplicates; the source offsets of either, in order."""

    first: dict[bytes, bytes] = field(default_factory=dict)
    duplicates: int = 0
    first_offsets: list[int] = field(default_factory=list)
    duplicate_offsets: list[int] = field(default_factory=list)


def sort_candidates(
    jobs: Iterable[Candidate], published_at: Callable[[bytes], float | None], cutoff: float
) -> Sorting:
    """Split candidates into first sightings and duplicates. `published_at(id)` says when the
    id was forwarded (None: never, or forgotten); a time before `cutoff` (now - window) is too
    old to count, whether or not the entry has been pruned yet."""
    out = Sorting()
    first = out.first
    for job in jobs:
        key = job.id.encode()
        if key in first:
            out.duplicates += 1
            out.duplicate_offsets.append(job.offset)
            continue
        at = published_at(key)
        if at is not None and at >= cutoff:
            out.duplicates += 1
            out.duplicate_offsets.append(job.offset)
            continue
        first[key] = bytes(job.job)
        out.first_offsets.append(job.offset)
    return out


def encode_entry(published_at: float, partition: int) -> bytes:
    """A published_jobs value: when the id was forwarded (Unix seconds) and its partition
    (which a pruning scan filters on without hashing the key)."""
    return b"[%.3f,%d]" % (published_at, partition)


def decode_entry(value: bytes) -> tuple[float, int]:
    return _ENTRY.decode(value)


def marker_key(partition: int) -> bytes:
    """The key of a partition's marker: the job_candidates offset recorded through. A job id
    never starts with `#`."""
    return b"#%d" % partition


def encode_marker(offset: int) -> bytes:
    return b"%d" % offset


def decode_marker(value: bytes) -> int:
    return _MARK.decode(value)


def prune_interval(window: float) -> float:
    """How often expired entries are deleted: a tenth of the window, from 0.2 s to 10 minutes.
    Decisions never depend on it (they compare times); it only bounds how long an expired
    entry is held, so the table holds at most the ids of one window and one interval."""
    return min(max(window / 10, 0.2), 600.0)
