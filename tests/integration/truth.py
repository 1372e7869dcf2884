"""What job_data and job_rejects must hold for a simulated task, from the simulator's truth.

The simulator says, for every row, what its dates mean and (for hostile rows) what the
pipeline must make of it; this module turns that into the expected fate of each source offset
and checks the topics against it, field by field.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Expected:
    """Source offsets by fate, and the truth row of each offset."""

    published: set[int] = field(default_factory=set)
    filtered: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)
    truths: dict[int, dict[str, Any]] = field(default_factory=dict)


def expected(truths: list[dict[str, Any]], filter_days: int = 7) -> Expected:
    oldest = datetime.now(SHANGHAI).date() - timedelta(days=filter_days)
    out = Expected()
    for truth in truths:
        index = truth["index"]
        out.truths[index] = truth
        fate = truth.get("expect")
        if fate is None:
            publish, collect = truth["publish_date"], truth["collect_date"]
            if publish is None or collect is None:
                fate = "rejected"
            elif min(date.fromisoformat(publish), date.fromisoformat(collect)) >= oldest:
                fate = "published"
            else:
                fate = "filtered"
        getattr(out, fate).add(index)
    return out


def check_jobs(jobs: list[tuple[str, dict[str, Any]]], want: Expected, task_id: str) -> None:
    """Every expected job exactly once, nothing else, each field as the truth says."""
    offsets = Counter(job["source_offset"] for _, job in jobs)
    assert not [o for o, n in offsets.items() if n > 1], "a source row published twice"
    missing, unexpected = want.published - set(offsets), set(offsets) - want.published
    assert not missing and not unexpected, (sorted(missing)[:10], sorted(unexpected)[:10])
    for key, job in jobs:
        truth = want.truths[job["source_offset"]]
        assert key == job["id"]
        assert job["task_id"] == task_id
        assert job["publish_date"] == truth["publish_date"], truth
        assert job["collect_time"] == truth["collect_date"], truth
        for name, text in truth["expect_text"].items():
            assert job[name] == text, (truth["index"], truth["hostile"], name)
        assert datetime.fromisoformat(job["crawl_time"]).utcoffset() == timedelta(hours=8)


def check_rejects(rejects: list[tuple[str, dict[str, Any]]], want: Expected) -> None:
    """Every expected reject exactly once, with a reason and the field the truth names."""
    offsets = Counter(reject["source_offset"] for _, reject in rejects)
    assert not [o for o, n in offsets.items() if n > 1], "a source row rejected twice"
    assert set(offsets) == want.rejected, (
        sorted(want.rejected - set(offsets))[:10],
        sorted(set(offsets) - want.rejected)[:10],
    )
    for _, reject in rejects:
        truth = want.truths[reject["source_offset"]]
        assert reject["reason"], reject
        if truth.get("expect_field"):
            assert reject["field"] == truth["expect_field"], (truth, reject["reason"])
        assert reject["row"] is not None or reject["row_excerpt"], reject
