"""The trace's two tables as this worker holds them: written in batches (the memory store's dict
directly, the changelog with the producer's own batches, as `jobstream.dedupe.published` does),
read for GET /trace and POST /replay, and pruned past the retention.

`trace_pages` is keyed by task (what became of each offset of a page), `trace_sightings` by the
partition of job ids (batches of decisions about ids). Each entry's time is in its value's head,
so pruning never decodes. Entries written here are registered with the memory store like those
it recovered, so that Faust drops them with a partition this worker loses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, MutableMapping
from typing import Any

from prometheus_client import Counter, Gauge

from jobstream.broker import batches
from jobstream.trace import entries
from jobstream.trace.entries import PageRecord, Sighting
from jobstream.worker_state import WorkerState

logger = logging.getLogger(__name__)

Message = tuple[bytes, bytes | None]

ENTRIES = Gauge(
    "jobstream_trace_entries",
    "Table entries of the trace this worker holds: pages (trace_pages) and decision batches "
    "(trace_sightings)",
    ["table"],
)
ROWS = Gauge(
    "jobstream_trace_rows",
    "Rows the trace holds on this worker: offsets of pages, decisions about job ids",
    ["table"],
)
BYTES = Gauge("jobstream_trace_bytes", "Bytes of the trace's values on this worker", ["table"])
PRUNED = Counter(
    "jobstream_trace_pruned_total", "Trace entries deleted past the retention", ["table"]
)


class TraceTable:
    """One of the trace's tables: `table` is a KeyPartitionedTable over the memory store."""

    def __init__(self, table: Any, name: str) -> None:
        self.table = table
        self.name = name
        ENTRIES.labels(name).set_function(lambda: len(self.data))
        ROWS.labels(name).set_function(self.rows)
        BYTES.labels(name).set_function(lambda: sum(len(v) for v in list(self.data.values())))

    @property
    def data(self) -> MutableMapping[bytes, bytes]:
        data: MutableMapping[bytes, bytes] = self.table.data.data
        return data

    @property
    def _known(self) -> MutableMapping[bytes, int]:
        # The memory store's note of each key's partition: it drops the keys of partitions
        # this worker no longer owns after a rebalance.
        known: MutableMapping[bytes, int] = getattr(self.table.data, "_key_partition", {})
        return known

    def partition_of(self, key: bytes) -> int:
        return int(self.table.partition_for_key(key))

    def put(self, key: bytes, value: bytes) -> tuple[int, Message]:
        """Hold `value` under `key`; the changelog message that makes it durable, and its
        partition."""
        partition = self.partition_of(key)
        self.data[key] = value
        self._known[key] = partition
        return partition, (key, value)

    def drop(self, keys: Iterable[bytes]) -> dict[int, list[Message]]:
        """Forget `keys`; their tombstones, by partition."""
        out: dict[int, list[Message]] = {}
        for key in keys:
            if self.data.pop(key, None) is not None:
                out.setdefault(self.partition_of(key), []).append((key, None))
            self._known.pop(key, None)
        return out

    async def send(
        self, worker: WorkerState, changes: dict[int, list[Message]]
    ) -> list[asyncio.Future[Any]]:
        kafka = worker.producer()
        name = self.table.changelog_topic_name
        deliveries: list[asyncio.Future[Any]] = []
        for partition, messages in changes.items():
            deliveries.extend(await batches.send_batches(kafka, name, partition, messages))  # type: ignore[arg-type]
        return deliveries

    def rows(self) -> float:
        total = 0
        for value in list(self.data.values()):
            if entries.is_page(value):
                _, first, next_offset = entries.page_span(value)
                total += next_offset - first
            elif entries.is_batch(value):
                total += entries.batch_count(value)
        return float(total)

    def expired(self, cutoff: float, partitions: set[int]) -> list[bytes]:
        """Keys of `partitions` whose entries are older than `cutoff` (Unix seconds)."""
        out = []
        for key, value in list(self.data.items()):
            if entries.is_page(value):
                at = entries.page_span(value)[0]
            elif entries.is_batch(value):
                at = entries.batch_time(value)
            else:
                continue
            if at < cutoff and self.partition_of(key) in partitions:
                out.append(key)
        return out


class TraceStore:
    """The trace on this worker: `pages` by task and offset, `sightings` by job id."""

    def __init__(self, pages: Any, sightings: Any, retention: float) -> None:
        self.pages = TraceTable(pages, "trace_pages")
        self.sightings = TraceTable(sightings, "trace_sightings")
        self.retention = retention

    # --- lookups

    def sightings_of(self, job_id: str) -> list[Sighting]:
        """Every decision held about `job_id`, newest first; one of each kind per row and
        origin (a page applied twice after a crash decides the same again)."""
        prefix = entries.id_prefix(job_id.encode())
        found: dict[tuple[str, int, str, str], Sighting] = {}
        for value in list(self.sightings.data.values()):
            if not entries.is_batch(value) or not entries.batch_may_hold(value, prefix):
                continue
            for sighting in entries.decode_batch(value):
                if sighting.id != job_id:
                    continue
                kind = type(sighting.decision).__name__
                same = (sighting.task_id, sighting.offset, sighting.origin, kind)
                held = found.get(same)
                if held is None or held.at < sighting.at:
                    found[same] = sighting
        return sorted(found.values(), key=lambda s: s.at, reverse=True)

    def pages_at(self, task_id: str, offset: int) -> list[PageRecord]:
        """The records of the task's pages that cover `offset`, newest first."""
        head = task_id.encode() + b"|"
        out = []
        for key, value in list(self.pages.data.items()):
            if not key.startswith(head) or not entries.is_page(value):
                continue
            _, first, next_offset = entries.page_span(value)
            if first <= offset < next_offset:
                out.append(entries.decode_page(value))
        return sorted(out, key=lambda r: r.at, reverse=True)

    def pages_of(self, task_id: str, source: str, source_resets: int) -> list[PageRecord]:
        """Every page record of the task's current progress (crawl and replay), oldest first."""
        head = f"{task_id}|{source_resets}|".encode()
        out = [
            entries.decode_page(value)
            for key, value in list(self.pages.data.items())
            if key.startswith(head) and entries.is_page(value)
        ]
        return sorted((r for r in out if r.source == source), key=lambda r: (r.first, r.at))

    def span_of(self, task_id: str) -> tuple[int, int] | None:
        """The offsets the task's page records cover: (lowest, highest + 1), or None."""
        head = task_id.encode() + b"|"
        spans = [
            entries.page_span(value)
            for key, value in list(self.pages.data.items())
            if key.startswith(head) and entries.is_page(value)
        ]
        if not spans:
            return None
        return min(s[1] for s in spans), max(s[2] for s in spans)

    # --- pruning

    async def prune(self, worker: WorkerState, owned: set[int], now: float | None = None) -> int:
        """Delete the entries of the `owned` partitions older than the retention."""
        cutoff = (time.time() if now is None else now) - self.retention
        pruned = 0
        for table in (self.pages, self.sightings):
            expired = table.expired(cutoff, owned)
            if not expired:
                continue
            deliveries = await table.send(worker, table.drop(expired))
            await asyncio.gather(*deliveries)
            PRUNED.labels(table.name).inc(len(expired))
            pruned += len(expired)
        if pruned:
            logger.debug("trace: %d entries older than %.0fs pruned", pruned, self.retention)
        return pruned


def page_key(record: PageRecord) -> bytes:
    return f"{record.task_id}|{record.source_resets}|{record.first}|{record.origin}".encode()


def batch_key(kind: bytes, partition: int, offset: int) -> bytes:
    """A `trace_sightings` key: `t` for job_trace's messages, `d` for the dedupe agent's
    decisions on job_candidates', with the message's partition and offset."""
    return b"%s%d:%d" % (kind, partition, offset)
