"""The `published_jobs` table as the dedupe agent uses it: job id -> when it was forwarded.

Keys and values are bytes, written in batches: the store (Faust's in-memory dict) directly, and
the changelog with the producer's own batches, one per partition, the way the page agent sends
jobs. Faust's per-key table writes cost a Faust send per job, and there is one to record every
first sighting and one to prune it. Recovery is Faust's own: it reads these changelog entries
back like any others.

Each partition also holds a marker, `#<partition>` -> the last job_candidates offset whose
outcome is recorded. It is written first in the same batch as that outcome's entries, so the
changelog never holds a marker without the entries before it; candidates at or below it are a
replay of recorded work (after a crash, Faust's committed offset lags behind) and are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, MutableMapping
from typing import Any

from jobstream.dedupe import sightings

Message = sightings.Message


class PublishedJobs:
    """`table` is co-partitioned with the topic named `source` (job_candidates)."""

    def __init__(self, table: Any, source: str) -> None:
        self.table = table
        self.source = source
        # Job ids held for the partitions this worker owns. The store may hold more: Faust
        # keeps reading other workers' partitions into it as standby copies.
        self.held = 0
        # Register once: entries of partitions this worker lost go with them.
        table.on_recover(self._keep_active_partitions)

    @property
    def _store(self) -> Any:
        return self.table.data

    @property
    def _data(self) -> MutableMapping[bytes, bytes]:
        # The memory store's dict (app.py configures store "memory://").
        data: MutableMapping[bytes, bytes] = self._store.data
        return data

    def published_at(self, key: bytes) -> float | None:
        value = self._data.get(key)
        return None if value is None else sightings.decode_entry(value)[0]

    def recorded_through(self, partition: int) -> int:
        """The last job_candidates offset of the partition whose outcome is recorded (-1)."""
        value = self._data.get(sightings.marker_key(partition))
        return -1 if value is None else sightings.decode_marker(value)

    def record(
        self, first: Iterable[tuple[Iterable[bytes], float, int]], through: dict[int, int]
    ) -> dict[int, list[Message]]:
        """Enter ids forwarded together (ids, when, partition) and each partition's marker; the
        changelog messages that make it durable, by partition, each marker first."""
        data = self._data
        out: dict[int, list[Message]] = {}
        for partition, offset in through.items():
            key, value = sightings.marker_key(partition), sightings.encode_marker(offset)
            data[key] = value
            out[partition] = [(key, value)]
        for keys, at, partition in first:
            value = sightings.encode_entry(at, partition)
            changes = out.setdefault(partition, [])
            for key in keys:
                if key not in data:
                    self.held += 1
                data[key] = value
                changes.append((key, value))
        return out

    async def expired(self, cutoff: float, partitions: set[int]) -> dict[int, list[bytes]]:
        """Ids of the given partitions forwarded before `cutoff`, by partition. A scan of the
        store that lets the event loop run every few thousand entries."""
        data = self._data
        out: dict[int, list[bytes]] = {}
        for index, key in enumerate(list(data)):
            if index % 5000 == 4999:
                await asyncio.sleep(0)
            value = data.get(key)
            if value is None or key[:1] == b"#":
                continue
            at, partition = sightings.decode_entry(value)
            if at < cutoff and partition in partitions:
                out.setdefault(partition, []).append(key)
        return out

    def forget(self, keys: Iterable[bytes]) -> None:
        """Drop pruned ids from the store (their tombstones are in the changelog)."""
        self.held -= self._drop(keys)

    def _drop(self, keys: Iterable[bytes]) -> int:
        data = self._data
        # The memory store's own note of the keys it read from the changelog.
        known = getattr(self._store, "_key_partition", {})
        dropped = 0
        for key in keys:
            dropped += data.pop(key, None) is not None
            known.pop(key, None)
        return dropped

    def __len__(self) -> int:
        """Job ids held for this worker's partitions (markers aside)."""
        return self.held

    async def _keep_active_partitions(self) -> None:
        """After a rebalance's recovery: drop what belongs to partitions this worker does not
        own. Faust's memory store drops the keys it read from the changelog; these were
        written past it."""
        active = self.owned()
        data = self._data
        foreign = [
            key
            for key, value in data.items()
            if (int(key[1:]) if key[:1] == b"#" else sightings.decode_entry(value)[1]) not in active
        ]
        self._drop(foreign)
        self.held = sum(key[:1] != b"#" for key in data)

    def owned(self) -> set[int]:
        """The partitions this worker owns (of the source topic, so of the table)."""
        return {
            tp.partition
            for tp in self.table.app.assignor.assigned_actives()
            if tp.topic == self.source
        }
