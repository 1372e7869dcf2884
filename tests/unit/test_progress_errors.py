"""When things happened to a task, as its progress keeps them for the operator: the time of the
last error, the last success, the error a success resolved (and when), and the last source
reset."""

from __future__ import annotations

from jobstream.progress import rules
from jobstream.records import Command, Progress

SOURCE = "https://openapi.bazhuayu.com"
T1 = "2026-01-15T10:30:00+08:00"
T2 = "2026-01-15T10:31:00+08:00"
T3 = "2026-01-15T10:33:00+08:00"


def progress(**fields: object) -> Progress:
    return Progress(task_id="t", source=SOURCE, **fields)  # type: ignore[arg-type]


def report(run: str, at: str, **fields: object) -> Command:
    return Command(task_id="t", action="report", run=run, at=at, **fields)  # type: ignore[arg-type]


def test_failed_run_keeps_its_time_with_its_reason() -> None:
    failed = rules.apply_command(progress(), report("failed", T1, offset=0, error="bad password"))
    assert (failed.last_error, failed.last_error_at) == ("bad password", T1)
    again = rules.apply_command(failed, report("failed", T2, offset=0, error="bad password"))
    assert (again.last_error_at, again.stuck_since) == (T2, T1)


def test_error_stays_with_its_time_while_the_next_run_is_running() -> None:
    failed = rules.apply_command(progress(), report("failed", T1, offset=0, error="x"))
    running = rules.apply_command(failed, report("running", T2))
    assert (running.status, running.last_error, running.last_error_at) == ("running", "x", T1)
    assert running.resolved_error == ""


def test_success_after_a_failure_keeps_the_error_as_resolved() -> None:
    failed = rules.apply_command(progress(), report("failed", T1, offset=0, error="x"))
    running = rules.apply_command(failed, report("running", T2))
    ok = rules.apply_command(running, report("succeeded", T3, total=10))
    assert (ok.last_error, ok.last_error_at, ok.status) == ("", "", "idle")
    assert (ok.resolved_error, ok.resolved_error_at, ok.resolved_at) == ("x", T1, T3)
    assert ok.last_success_at == T3


def test_success_without_an_error_keeps_the_earlier_resolved_one() -> None:
    earlier = progress(resolved_error="x", resolved_error_at=T1, resolved_at=T2)
    ok = rules.apply_command(earlier, report("succeeded", T3, total=10))
    assert (ok.resolved_error, ok.resolved_error_at, ok.resolved_at) == ("x", T1, T2)
    assert ok.last_success_at == T3


def test_new_failure_after_a_resolved_one_is_the_last_error_again() -> None:
    earlier = progress(resolved_error="x", resolved_error_at=T1, resolved_at=T2)
    failed = rules.apply_command(earlier, report("failed", T3, offset=5, error="y"))
    assert (failed.last_error, failed.last_error_at, failed.resolved_error) == ("y", T3, "x")


def test_source_reset_keeps_its_time_and_the_task_errors() -> None:
    before = progress(
        current_offset=900, total=900, published=400, status="error", last_error="x",
        last_error_at=T1, consecutive_failures=2, failing_offset=900, last_success_at=T1,
    )  # fmt: skip
    reset = Command(task_id="t", action="reset", at=T2, total=120, error="source reset")
    after = rules.apply_command(before, reset)
    assert (after.last_reset_at, after.source_resets, after.current_offset) == (T2, 1, 0)
    assert (after.last_error, after.last_error_at, after.consecutive_failures) == ("x", T1, 2)
    assert (after.failing_offset, after.published, after.last_success_at) == (None, 0, T1)
