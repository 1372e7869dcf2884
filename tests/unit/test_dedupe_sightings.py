"""Dedupe decisions and encodings: candidates grouped by the partition of their ids and handed
on byte for byte, first sightings within the window, entries, markers and the prune interval."""

from __future__ import annotations

import cramjam
import msgspec
import pytest

from jobstream.dedupe import sightings
from jobstream.frames import ZSTD_MAGIC
from jobstream.records import Candidate, Job, Progress
from jobstream.topics import job_partition, key_partition
from jobstream.transform.ids import job_id_for_text

TASK = "00f3b445-d8ec-44e8-88b2-4b971a228b1e"
PROGRESS = Progress(task_id=TASK, source="https://openapi.bazhuayu.com", source_resets=2)


def job(n: int, description: str = "岗位职责") -> tuple[bytes, bytes]:
    """A kept job as the page agent sends it: (id, JSON)."""
    url = f"https://www.zhaopin.com/jobdetail/CC{n:09d}.htm"
    job_id = job_id_for_text({"url": url})
    value = msgspec.json.encode(
        Job(
            id=job_id, job_category="销售", job_title="销售代表", company="青岛公司", salary="1万",
            location="青岛", publish_date="2026-01-13", collect_time="2026-01-15", url=url,
            description=description, experience="", education="",
            crawl_time="2026-01-15T10:30:00+08:00", task_id=TASK, source_offset=n, demo=False,
        )
    )  # fmt: skip
    return job_id.encode(), value


def partition_of(key: bytes) -> int:
    return key_partition(key, 3)


def test_candidates_grouped_by_partition_carry_each_job_byte_for_byte() -> None:
    jobs = [job(n) for n in range(200)]
    messages = sightings.candidate_messages(
        PROGRESS, jobs, lambda keys: [partition_of(k) for k in keys], 1_000_000
    )
    assert len(messages) == 3
    seen = []
    for key, value in messages:
        assert value[:4] == ZSTD_MAGIC
        candidates = sightings.decode_candidates(value)
        assert candidates.task_id == TASK and candidates.jobs[0].id.encode() == key
        assert (candidates.source, candidates.source_resets) == (PROGRESS.source, 2)
        partitions = {partition_of(c.id.encode()) for c in candidates.jobs}
        assert partitions == {partition_of(key)}
        seen.extend((c.id.encode(), bytes(c.job)) for c in candidates.jobs)
    assert sorted(seen) == sorted(jobs)
    # In source order within each partition.
    for key, value in messages:
        ids = [c.id.encode() for c in sightings.decode_candidates(value).jobs]
        assert ids == [k for k, _ in jobs if partition_of(k) == partition_of(key)]


def test_candidates_split_to_fit_the_message_limit() -> None:
    jobs = [job(n, "很长的描述" * 3000) for n in range(40)]  # about 45 KB of JSON each
    messages = sightings.candidate_messages(PROGRESS, jobs, lambda keys: [0] * len(keys), 200_000)
    assert len(messages) > 5
    sizes = []
    for _, value in messages:
        candidates = sightings.decode_candidates(value)
        sizes.append(len(msgspec.json.encode(candidates)))
    assert max(sizes) <= 200_000
    decoded = [bytes(c.job) for _, v in messages for c in sightings.decode_candidates(v).jobs]
    assert decoded == [value for _, value in jobs]


def test_candidates_plain_json_is_read_too() -> None:
    plain = msgspec.json.encode(
        {"task_id": TASK, "jobs": [["id-1", {"a": 1}], ["id-2", {"b": "二"}]]}
    )
    candidates = sightings.decode_candidates(plain)
    assert [(c.id, bytes(c.job)) for c in candidates.jobs] == [
        ("id-1", b'{"a":1}'),
        ("id-2", '{"b":"二"}'.encode()),
    ]


@pytest.mark.parametrize("value", [b"", b"{}", b"not json", ZSTD_MAGIC + b"broken"])
def test_candidates_undecodable_value_raises_what_the_agent_catches(value: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, cramjam.DecompressionError)):
        sightings.decode_candidates(value)


def candidate(job_id: str, n: int = 0) -> Candidate:
    return Candidate(job_id, msgspec.Raw(b'{"n":%d}' % n))


def test_sort_first_sighting_forwarded_repeat_in_the_batch_a_duplicate() -> None:
    sorting = sightings.sort_candidates(
        [candidate("a", 1), candidate("b", 2), candidate("a", 3)], lambda key: None, 100.0
    )
    assert sorting.first == {b"a": b'{"n":1}', b"b": b'{"n":2}'}
    assert sorting.duplicates == 1


def test_sort_published_within_the_window_is_a_duplicate_before_it_is_not() -> None:
    published = {b"recent": 150.0, b"edge": 100.0, b"old": 99.9}
    sorting = sightings.sort_candidates(
        [candidate("recent"), candidate("edge"), candidate("old"), candidate("new")],
        published.get,
        100.0,
    )
    assert list(sorting.first) == [b"old", b"new"] and sorting.duplicates == 2


def test_entry_and_marker_encoded_round_trip() -> None:
    assert sightings.decode_entry(sightings.encode_entry(1767000000.1234, 2)) == (1767000000.123, 2)
    assert sightings.decode_marker(sightings.encode_marker(41)) == 41
    assert sightings.marker_key(2) == b"#2"
    # A marker lives in the partition it names; a job id in the partition of its key.
    assert job_partition(b"#2", 3) == 2
    key = job(7)[0]
    assert job_partition(key, 3) == key_partition(key, 3)


@pytest.mark.parametrize(
    ("window", "interval"), [(1.0, 0.2), (0.5, 0.2), (60.0, 6.0), (7 * 86400.0, 600.0)]
)
def test_prune_interval_a_tenth_of_the_window_within_bounds(window: float, interval: float) -> None:
    assert sightings.prune_interval(window) == interval
