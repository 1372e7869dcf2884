"""How a task's progress moves: page plans, run reports, anomalies, resets, and which stored
progress a task resumes from."""

from __future__ import annotations

import msgspec
import pytest

from jobstream.progress import rules
from jobstream.progress.rules import Counts, PagePlan
from jobstream.records import Command, Progress, RawPage

AT = "2026-01-15T10:30:00+08:00"
LATER = "2026-01-15T10:35:00+08:00"
SOURCE = "https://openapi.bazhuayu.com"


def page(
    offset: int, n: int, next_offset: int | None = None, total: int = 1000, source: str = SOURCE
) -> RawPage:
    return RawPage(
        task_id="t",
        source=source,
        offset=offset,
        next_offset=offset + n if next_offset is None else next_offset,
        total=total,
        fetched_at=AT,
        rows=[msgspec.Raw(msgspec.json.encode({"i": offset + i})) for i in range(n)],
    )


def progress(**fields: object) -> Progress:
    return Progress(task_id="t", source=SOURCE, **fields)  # type: ignore[arg-type]


def command(action: str, at: str = AT, **fields: object) -> Command:
    return Command(task_id="t", action=action, at=at, **fields)  # type: ignore[arg-type]


def test_plan_page_at_current_offset_is_applied_whole() -> None:
    assert rules.plan_page(progress(current_offset=100), page(100, 50)) == PagePlan("apply")


def test_plan_page_already_applied_is_skipped() -> None:
    assert rules.plan_page(progress(current_offset=200), page(100, 100)).action == "skip"


def test_plan_page_beyond_current_offset_is_a_gap() -> None:
    plan = rules.plan_page(progress(current_offset=100), page(150, 50))
    assert plan.action == "gap" and "150" in plan.reason


def test_plan_page_overlapping_is_applied_from_current_offset() -> None:
    plan = rules.plan_page(progress(current_offset=130), page(100, 100))
    assert (plan.action, plan.first_row) == ("apply", 30)


def test_plan_page_claiming_fewer_offsets_than_rows_is_a_gap() -> None:
    assert rules.plan_page(progress(), page(0, 10, next_offset=5)).action == "gap"


def test_plan_page_from_another_source_is_skipped() -> None:
    plan = rules.plan_page(progress(), page(0, 10, source="demo"))
    assert plan.action == "skip" and "demo" in plan.reason


def test_advance_counts_rows_and_offsets_skipped_by_the_source() -> None:
    before = progress(current_offset=100, published=60, filtered=40, status="running")
    after = rules.advance(
        before, page(100, 50, next_offset=170), Counts(published=20, filtered=25, rejected=5), AT
    )
    assert (after.current_offset, after.published, after.filtered, after.rejected) == (
        170,
        80,
        65,
        5,
    )
    assert after.skipped == 20 and after.status == "running"
    # Every offset up to current_offset is accounted for.
    assert after.published + after.filtered + after.rejected + after.skipped == 170


def test_failed_run_is_error_with_reason_and_counts_failures() -> None:
    failed = rules.apply_command(
        progress(status="running"), command("report", run="failed", offset=300, error="boom")
    )
    assert (failed.status, failed.last_error, failed.consecutive_failures) == ("error", "boom", 1)
    assert (failed.failing_offset, failed.stuck_since) == (300, AT)


def test_failing_again_at_the_same_offset_keeps_stuck_since() -> None:
    first = rules.apply_command(progress(), command("report", run="failed", offset=300, error="x"))
    again = rules.apply_command(
        first, command("report", run="failed", at=LATER, offset=300, error="y")
    )
    assert (again.consecutive_failures, again.stuck_since, again.last_error) == (2, AT, "y")


def test_failing_further_on_restarts_stuck_since() -> None:
    first = rules.apply_command(progress(), command("report", run="failed", offset=300, error="x"))
    moved = rules.apply_command(
        first, command("report", run="failed", at=LATER, offset=900, error="y")
    )
    assert (moved.consecutive_failures, moved.stuck_since, moved.failing_offset) == (2, LATER, 900)


def test_a_new_run_after_failure_shows_running_and_keeps_the_error() -> None:
    failed = rules.apply_command(progress(), command("report", run="failed", offset=0, error="x"))
    running = rules.apply_command(failed, command("report", run="running"))
    assert (running.status, running.last_error, running.consecutive_failures) == ("running", "x", 1)


def test_a_successful_run_clears_the_error() -> None:
    failed = rules.apply_command(progress(), command("report", run="failed", offset=0, error="x"))
    ok = rules.apply_command(failed, command("report", run="succeeded", total=800))
    assert (ok.status, ok.last_error, ok.consecutive_failures, ok.stuck_since) == (
        "idle",
        "",
        0,
        "",
    )
    assert ok.total == 800 and ok.failing_offset is None


@pytest.mark.parametrize("run", ["running", "succeeded", "failed"])
def test_reports_never_undo_a_stop(run: str) -> None:
    stopped = rules.apply_command(progress(status="running"), command("stop"))
    after = rules.apply_command(stopped, command("report", run=run, offset=0, error="x"))
    assert after.status == "stopped"


def test_start_lifts_a_stop_but_not_an_error() -> None:
    assert rules.apply_command(progress(status="stopped"), command("start")).status == "idle"
    assert rules.apply_command(progress(status="error"), command("start")).status == "error"


def test_anomaly_is_counted_and_shown() -> None:
    after = rules.apply_command(progress(), command("anomaly", offset=5, error="cursor jump"))
    assert after.cursor_anomalies == 1 and after.last_anomaly == f"{AT} cursor jump"


def test_reset_starts_over_from_zero_with_fresh_counters() -> None:
    before = progress(
        current_offset=900, total=900, published=400, duplicates=5, skipped=3, status="running"
    )
    after = rules.apply_command(before, command("reset", total=120, error="source reset"))
    assert (after.current_offset, after.total, after.published, after.skipped) == (0, 120, 0, 0)
    assert after.duplicates == 0
    assert (after.source_resets, after.status, after.source) == (1, "running", SOURCE)
    assert "source reset" in after.last_anomaly


def deduped(**fields: object) -> Command:
    return command("deduped", published=30, duplicates=5, **{"source": SOURCE, **fields})


def test_deduped_report_adds_published_and_duplicates_only() -> None:
    before = progress(current_offset=300, published=10, duplicates=2, filtered=50, status="idle")
    after = rules.apply_command(before, deduped(source_resets=0))
    assert (after.published, after.duplicates) == (40, 7)
    assert msgspec.structs.replace(after, published=10, duplicates=2) == before


@pytest.mark.parametrize(
    "stale", [{"source": "demo", "source_resets": 1}, {"source_resets": 0}, {"source_resets": 2}]
)
def test_deduped_report_of_progress_set_aside_is_not_counted(stale: dict[str, object]) -> None:
    # The task's source was reset once since, or its progress belongs to another API.
    before = progress(current_offset=300, published=10, source_resets=1)
    assert rules.apply_command(before, deduped(**stale)) == before


def test_page_with_dedupe_leaves_published_to_the_dedupe_report() -> None:
    after = rules.advance(progress(), page(0, 10), Counts(published=0, filtered=4), AT)
    assert (after.current_offset, after.published, after.filtered) == (10, 0, 4)


def test_resume_takes_the_further_of_table_and_mirror() -> None:
    table, mirror = progress(current_offset=1925), progress(current_offset=2062)
    assert rules.resume(table, mirror, "t", SOURCE) == (mirror, [])
    assert rules.resume(None, None, "t", SOURCE) == (Progress(task_id="t", source=SOURCE), [])


def test_resume_sets_aside_progress_of_another_source() -> None:
    demo = Progress(task_id="t", source="demo", current_offset=5000)
    resumed, notes = rules.resume(None, demo, "t", SOURCE)
    assert resumed.current_offset == 0 and resumed.source == SOURCE
    assert len(notes) == 1 and "demo" in notes[0] and "5000" in notes[0]


def test_resume_sets_aside_progress_with_no_recorded_source() -> None:
    legacy = Progress(task_id="t", current_offset=70)
    resumed, notes = rules.resume(legacy, None, "t", SOURCE)
    assert resumed.current_offset == 0 and "unrecorded" in notes[0]


def test_percent_as_in_the_seed() -> None:
    assert rules.percent(progress(current_offset=156700, total=257449)) == "60.87%"
    assert rules.percent(progress(current_offset=0, total=0)) == "0.00%"
    assert rules.percent(progress(current_offset=10, total=5)) == "100.00%"
