"""Rejected rows in the log (jobstream/pipeline/reject_log.py): one INFO line per task and run."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from jobstream.pipeline.reject_log import SAY_EVERY, RejectLog


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reject_log_one_line_at_the_source_end_with_meanings(caplog) -> None:
    log = RejectLog("job_rejects")
    with caplog.at_level(logging.INFO, "jobstream.pipeline.reject_log"):
        log.count("t1", 0, 100, 250, Counter({"aae397": 2}), demo=True)
        log.count("t2", 0, 100, 100, Counter(), demo=True)  # no rejects: nothing to say
        log.count("t1", 100, 200, 250, Counter({"Collect_time": 3, "aae397": 1}), demo=True)
        log.count("t1", 200, 250, 250, Counter(), demo=True)

    assert caplog.messages == [
        "task_id=t1 offset=250 6 rows rejected in offsets 0..249 (aae397 (publish date): 3, "
        "Collect_time (collect time): 3); each is in job_rejects with its reason; the demo data "
        "holds bad rows on purpose"
    ]
    assert caplog.records[0].levelno == logging.INFO


@pytest.mark.parametrize("demo", [False, True])
def test_reject_log_long_backfill_says_it_every_interval(caplog, demo: bool) -> None:
    clock = Clock()
    log = RejectLog("job_rejects", clock)
    with caplog.at_level(logging.INFO, "jobstream.pipeline.reject_log"):
        log.count("t", 0, 100, 10_000, Counter({"row": 1}), demo=demo)
        clock.now = SAY_EVERY
        log.count("t", 100, 200, 10_000, Counter({"row": 1}), demo=demo)
        log.count("t", 200, 300, 10_000, Counter({"row": 1}), demo=demo)

    [line] = caplog.messages
    assert line.startswith("task_id=t offset=200 2 rows rejected in offsets 0..199 (row (whole")
    assert ("on purpose" in line) is demo
