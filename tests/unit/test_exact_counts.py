"""Counters exact after a crash: the dedupe agent reports each kept row by its source offset and
job_candidates partition, and the commands agent counts each offset once; what a crash makes
come again (the agent's own replay, a page applied again after its progress was lost, a replay
whose rounds are cut differently) counts nothing twice. And a task resumes from the stored
progress that has counted the most."""

from __future__ import annotations

from typing import Any

import msgspec

from jobstream.dedupe import agent, sightings
from jobstream.dedupe.agent import Counted, Step, Tally, tally
from jobstream.progress import rules
from jobstream.progress.mirror import ProgressMirror
from jobstream.records import Command, Decided, Progress

SOURCE = "https://openapi.bazhuayu.com"
AT = "2026-01-15T10:30:00+08:00"
PROGRESS = Counted("t", SOURCE, 0)


def step(partition: int, first: list[int], duplicates: list[int], offset: int = 0) -> Step:
    """A job_candidates message's decisions (the event and the jobs do not matter here)."""
    forwarded = {f"id-{partition}-{offset}-{i}".encode(): b"{}" for i, _ in enumerate(first)}
    return Step(
        event=Any,  # type: ignore[arg-type]
        partition=partition,
        offset=offset,
        progress=PROGRESS,
        at=0.0,
        first=forwarded,
        duplicates=len(duplicates),
        first_offsets=first,
        duplicate_offsets=duplicates,
    )


def report(*steps: Step) -> list[Command]:
    """The `deduped` commands the agent sends for a round of steps."""
    return [
        Command(
            task_id="t",
            action="deduped",
            at=AT,
            source=SOURCE,
            source_resets=0,
            published=published or None,
            duplicates=duplicates or None,
            decided=decided,
        )
        for decided, published, duplicates in tally(list(steps))[PROGRESS].commands()
    ]


def apply(progress: Progress, commands: list[Command]) -> Progress:
    for command in commands:
        progress = rules.apply_command(progress, command)
    return progress


def start() -> Progress:
    return Progress(task_id="t", source=SOURCE, current_offset=40, filtered=10)


def test_exact_counts_each_offset_once_whatever_comes_again() -> None:
    a = step(0, [0, 3, 6], [9], offset=1)
    b = step(1, [1, 4], [7, 10], offset=1)
    c = step(0, [12, 15], [], offset=2)
    once = apply(start(), report(a, b) + report(c))
    assert (once.published, once.duplicates) == (7, 3)
    assert once.deduped_through == {0: 15, 1: 10}
    # The agent crashed after reporting and decides the same messages again, in rounds cut
    # otherwise: nothing more is counted.
    assert apply(once, report(a) + report(b, c)) == once
    # A page applied again after its progress was lost: its rows come back as duplicates of
    # themselves (their ids are published), in a new message of the same partition.
    assert apply(once, report(step(0, [], [0, 3, 6, 9], offset=3))) == once


def test_exact_counts_a_replay_running_past_what_was_counted_counts_the_rest() -> None:
    counted = apply(start(), report(step(0, [0, 3], [6])))
    # Cut at other page boundaries this time: 3 and 6 again, then 9 and 12, new.
    after = apply(counted, report(step(0, [3], [6, 9], offset=5), step(0, [12], [], offset=6)))
    assert (after.published, after.duplicates) == (3, 2)
    assert after.deduped_through == {0: 12}


def test_exact_counts_a_replay_within_one_round_is_dropped_by_the_agent() -> None:
    counts = tally([step(2, [5, 8], [11]), step(2, [], [5, 8, 11], offset=1), step(2, [14], [])])
    assert counts[PROGRESS].first == {2: [5, 8, 14]}
    assert counts[PROGRESS].duplicates == {2: [11]}


def test_exact_counts_a_long_round_is_cut_into_commands_in_offset_order(monkeypatch) -> None:
    monkeypatch.setattr(agent, "MAX_OFFSETS_PER_COMMAND", 4)
    commands = report(step(0, [0, 2, 4], [6, 8]), step(1, [1, 3], [5]))
    assert [c.decided for c in commands] == [
        [Decided(0, [0, 2, 4], [6])],
        [Decided(0, [], [8]), Decided(1, [1, 3], [5])],
    ]
    after = apply(start(), commands)
    assert (after.published, after.duplicates) == (5, 3)
    assert len(msgspec.json.encode(commands[0])) < 200


def test_exact_counts_candidates_of_an_earlier_version_are_counted_as_before() -> None:
    commands = report(step(0, [-1, -1], [-1]), step(1, [7], []))
    assert (commands[0].published, commands[0].duplicates) == (2, 1)
    after = apply(start(), commands)
    assert (after.published, after.duplicates, after.deduped_through) == (3, 1, {1: 7})
    # A command of an earlier version (counts, no offsets) adds its counts.
    legacy = Command(
        task_id="t", action="deduped", at=AT, published=4, duplicates=1, source=SOURCE,
        source_resets=0,
    )  # fmt: skip
    assert (rules.apply_command(after, legacy).published, after.duplicates) == (7, 1)


def test_exact_counts_a_source_reset_starts_the_marks_over() -> None:
    counted = apply(start(), report(step(0, [0, 3], [])))
    reset = rules.apply_command(counted, Command(task_id="t", action="reset", at=AT, total=10))
    assert reset.deduped_through == {} and reset.published == 0


def test_exact_counts_resume_takes_the_stored_progress_that_counted_more() -> None:
    table = Progress(task_id="t", source=SOURCE, current_offset=40, published=10)
    mirror = msgspec.structs.replace(table, published=25, deduped_through={0: 39})
    assert rules.resume(table, mirror, "t", SOURCE)[0] == mirror
    assert rules.resume(table, table, "t", SOURCE)[0] is table  # equal: the table
    after_reset = Progress(task_id="t", source=SOURCE, current_offset=5, source_resets=1)
    assert rules.resume(after_reset, table, "t", SOURCE)[0] == after_reset


def test_exact_counts_marks_survive_the_mirror(tmp_path) -> None:
    mirror = ProgressMirror(tmp_path / "progress.db")
    saved = Progress(task_id="t", source=SOURCE, published=3, deduped_through={0: 12, 2: 7})
    mirror.save(saved)
    assert ProgressMirror(tmp_path / "progress.db").load("t") == saved


def test_exact_counts_tally_counts_forwards_for_the_metrics() -> None:
    found: Tally = tally([step(0, [1, 2], [3]), step(0, [], [1, 2], offset=1)])[PROGRESS]
    assert (found.forwarded, found.repeated) == (2, 3)


def test_exact_counts_candidates_carry_each_jobs_source_offset() -> None:
    jobs = [(f"00000000-0000-4000-8000-{n:012d}".encode(), b'{"n":%d}' % n) for n in range(6)]
    messages = sightings.candidate_messages(
        Progress(task_id="t", source=SOURCE),
        jobs,
        lambda keys: [0] * len(keys),
        1_000_000,
        [10, 11, 13, 14, 16, 17],
    )
    (_, value) = messages[0]
    candidates = sightings.decode_candidates(value).jobs
    assert [c.offset for c in candidates] == [10, 11, 13, 14, 16, 17]
    published = {jobs[1][0]: 100.0}
    sorting = sightings.sort_candidates([*candidates, candidates[0]], published.get, 50.0)
    assert sorting.first_offsets == [10, 13, 14, 16, 17]
    assert sorting.duplicate_offsets == [11, 10]


class _Table:
    def __init__(self, recorded: dict[int, int]) -> None:
        self.recorded = recorded

    def recorded_through(self, partition: int) -> int:
        return self.recorded.get(partition, -1)


class _Event:
    def __init__(self, partition: int, offset: int) -> None:
        self.message = agent._Message("job_candidates", partition, offset, b"", [])


async def test_exact_counts_messages_the_stream_skipped_are_decided_first(monkeypatch) -> None:
    """A restarted worker's stream was seen to begin past job_candidates messages nobody had
    recorded: deciding the later ones first raised the marks past the earlier ones' rows,
    which were then never counted. The stage reads the hole itself and decides it first."""
    stage = agent.Stage.__new__(agent.Stage)
    stage.table = _Table({0: 4})  # type: ignore[assignment]
    stage.next_offset = {}
    taken: list[tuple[int, int, bool]] = []
    asked: list[tuple[int, int, int]] = []

    async def read(topic: str, partition: int, start: int, end: int) -> list[agent._Message]:
        asked.append((partition, start, end))
        return [agent._Message(topic, partition, o, b"", []) for o in range(start, end)]

    async def take(event: Any) -> None:
        m = event.message
        stage.next_offset[m.partition] = max(stage.next_offset.get(m.partition, 0), m.offset + 1)
        taken.append((m.partition, m.offset, isinstance(event, agent.Backfilled)))

    monkeypatch.setattr(stage, "_read", read)
    monkeypatch.setattr(stage, "_take", take)
    await stage.take(_Event(0, 8))  # recorded through 4: 5..7 were never delivered
    await stage.take(_Event(0, 9))  # in order: nothing to read
    await stage.take(_Event(0, 3))  # a replay below the mark: as before, no reading
    await stage.take(_Event(1, 0))  # nothing recorded, first message: nothing missed
    assert asked == [(0, 5, 8)]
    assert taken == [
        (0, 5, True),
        (0, 6, True),
        (0, 7, True),
        (0, 8, False),
        (0, 9, False),
        (0, 3, False),
        (1, 0, False),
    ]
