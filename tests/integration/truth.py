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


def settled(status: dict[str, Any]) -> bool:
    """Whether every applied row is accounted for: with dedupe on, the dedupe agent reports
    what became of a page's kept rows (published or duplicate) a moment after the page agent
    advanced `current_offset`."""
    rows = status["rows"]
    counted = sum(rows[k] for k in ("published", "duplicates", "filtered", "rejected", "skipped"))
    return bool(counted == status["current_offset"])


@dataclass
class Sightings:
    """With dedupe by URL: of the eligible rows, the first sighting of each posting (what
    job_data holds) and the later ones (duplicates), by task, as (task id, source offset)."""

    first: dict[str, tuple[str, int]] = field(default_factory=dict)  # posting -> its first
    duplicates: Counter[str] = field(default_factory=Counter)  # task id -> repeats dropped
    published: Counter[str] = field(default_factory=Counter)  # task id -> first sightings
    truths: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)


def sightings(rounds: list[dict[str, list[dict[str, Any]]]], filter_days: int = 7) -> Sightings:
    """`rounds` are the rows each crawl round read, by task, in the order they were crawled.
    Within a round the order of the tasks does not matter: the simulator's repeats of another
    task's rows copy rows that existed before the round, and a repeat has its original's fate
    under the 7-day rule (same publish date, later collect date)."""
    out = Sightings()
    for tasks in rounds:
        for task_id, truths in tasks.items():
            want = expected(truths, filter_days)
            for offset in sorted(want.published):
                truth = want.truths[offset]
                out.truths[(task_id, offset)] = truth
                if truth["posting"] in out.first:
                    out.duplicates[task_id] += 1
                else:
                    out.first[truth["posting"]] = (task_id, offset)
                    out.published[task_id] += 1
    return out


def check_first_sightings(jobs: list[tuple[str, dict[str, Any]]], want: Sightings) -> None:
    """job_data holds the first sighting of every posting, once, each field as the truth says."""
    ids = Counter(key for key, _ in jobs)
    assert not [i for i, n in ids.items() if n > 1], "a job id published twice"
    found = {(job["task_id"], job["source_offset"]) for _, job in jobs}
    wanted = set(want.first.values())
    assert found == wanted, (sorted(wanted - found)[:10], sorted(found - wanted)[:10])
    for key, job in jobs:
        truth = want.truths[(job["task_id"], job["source_offset"])]
        assert key == job["id"]
        assert job["publish_date"] == truth["publish_date"], truth
        assert job["collect_time"] == truth["collect_date"], truth
        for name, text in truth["expect_text"].items():
            assert job[name] == text, (truth["index"], name)
