"""Lag per partition from end offsets, committed offsets and log starts."""

from __future__ import annotations

from aiokafka import TopicPartition

from jobstream.broker.lag import lag_by_partition

TPS = [TopicPartition("job_data", p) for p in range(3)]


def test_lag_committed_partitions_count_from_commit() -> None:
    ends = dict(zip(TPS, (10, 20, 30), strict=True))
    committed = dict(zip(TPS, (10, 5, 0), strict=True))
    starts = dict.fromkeys(TPS, 0)
    assert lag_by_partition(ends, committed, starts) == {0: 0, 1: 15, 2: 30}


def test_lag_uncommitted_partitions_count_from_log_start() -> None:
    ends = dict(zip(TPS, (10, 20, 30), strict=True))
    committed = {TPS[0]: None, TPS[1]: -1, TPS[2]: 25}
    starts = dict(zip(TPS, (0, 4, 28), strict=True))
    # A commit below the log start reads on from the start (the older messages are gone).
    assert lag_by_partition(ends, committed, starts) == {0: 10, 1: 16, 2: 2}
