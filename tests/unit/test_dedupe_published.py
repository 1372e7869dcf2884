"""The published_jobs table as the dedupe agent writes it: entries and markers into the store,
the changelog messages that go with them (each partition's marker first), pruning."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from jobstream.dedupe import sightings
from jobstream.dedupe.published import PublishedJobs

SOURCE = "job_candidates"


def table(owned: set[int]) -> Any:
    """What PublishedJobs uses of a Faust table with the memory store."""
    assignor = SimpleNamespace(assigned_actives=lambda: {TP(SOURCE, p) for p in owned})
    return SimpleNamespace(
        data=SimpleNamespace(data={}, _key_partition={}),
        partitions=3,
        app=SimpleNamespace(assignor=assignor, conf=SimpleNamespace(topic_partitions=3)),
        recover_callbacks=[],
        on_recover=lambda fun: None,
    )


def test_published_record_writes_entries_and_markers_marker_first() -> None:
    jobs = PublishedJobs(table({0, 1, 2}), SOURCE)
    changes = jobs.record([([b"a", b"b"], 100.0, 1), ([b"c"], 101.0, 2)], {1: 7, 2: 9})
    assert changes[1][0] == (b"#1", b"7") and changes[2][0] == (b"#2", b"9")
    assert [k for k, _ in changes[1][1:]] == [b"a", b"b"] and changes[2][1][0] == b"c"
    assert jobs.published_at(b"a") == 100.0 and jobs.published_at(b"z") is None
    assert (jobs.recorded_through(1), jobs.recorded_through(0)) == (7, -1)
    assert len(jobs) == 3  # markers aside
    jobs.record([([b"a"], 200.0, 1)], {1: 8})  # published again after its window: no new id
    assert len(jobs) == 3 and jobs.published_at(b"a") == 200.0


async def test_published_prune_takes_only_owned_partitions_then_forgets() -> None:
    jobs = PublishedJobs(table({1}), SOURCE)
    jobs.record([([b"old1"], 10.0, 1), ([b"old2"], 10.0, 2), ([b"new1"], 50.0, 1)], {1: 3})
    expired = await jobs.expired(20.0, jobs.owned())
    assert expired == {1: [b"old1"]}
    jobs.forget(expired[1])
    assert jobs.published_at(b"old1") is None and len(jobs) == 2
    assert jobs.recorded_through(1) == 3  # markers are never pruned


async def test_published_after_recovery_partitions_not_owned_are_dropped() -> None:
    faust_table = table({0})
    jobs = PublishedJobs(faust_table, SOURCE)
    jobs.record([([b"mine"], 1.0, 0), ([b"theirs"], 1.0, 2)], {0: 1, 2: 4})
    await jobs._keep_active_partitions()
    assert set(faust_table.data.data) == {b"mine", sightings.marker_key(0)}
    assert len(jobs) == 1
