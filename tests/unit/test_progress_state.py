"""How a task's progress moves: page plans, commands, and the table/mirror choice."""

from __future__ import annotations

from datetime import UTC, datetime

from jobstream.progress import state
from jobstream.records import Command, Progress, RawPage

AT = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def page(offset: int, n: int, next_offset: int | None = None, total: int = 1000) -> RawPage:
    return RawPage(
        task_id="t",
        offset=offset,
        next_offset=offset + n if next_offset is None else next_offset,
        total=total,
        rows=[{"i": offset + i} for i in range(n)],
        fetched_at=AT.isoformat(),
    )


def command(action: str, **fields: object) -> Command:
    return Command(task_id="t", action=action, at=AT.isoformat(), **fields)  # type: ignore[arg-type]


def test_plan_page_at_current_offset_is_applied_whole() -> None:
    assert state.plan_page(Progress(task_id="t", current_offset=100), page(100, 50)) == (
        state.PagePlan("apply", first_row=0)
    )


def test_plan_page_below_current_offset_is_skipped() -> None:
    plan = state.plan_page(Progress(task_id="t", current_offset=200), page(100, 100))
    assert plan.action == "skip"


def test_plan_page_beyond_current_offset_is_a_gap_never_applied() -> None:
    plan = state.plan_page(Progress(task_id="t", current_offset=100), page(150, 50))
    assert plan.action == "gap" and "150" in plan.reason and "100" in plan.reason


def test_plan_page_overlapping_current_offset_applies_only_new_rows() -> None:
    plan = state.plan_page(Progress(task_id="t", current_offset=130), page(100, 100))
    assert plan == state.PagePlan("apply", first_row=30)


def test_plan_page_claiming_fewer_offsets_than_rows_is_refused() -> None:
    plan = state.plan_page(Progress(task_id="t", current_offset=0), page(0, 10, next_offset=5))
    assert plan.action == "gap"


def test_plan_page_empty_last_page_at_end_is_skipped() -> None:
    plan = state.plan_page(Progress(task_id="t", current_offset=100), page(100, 0))
    assert plan.action == "skip"


def test_advance_moves_offset_and_adds_counters_keeping_status() -> None:
    before = Progress(task_id="t", current_offset=100, status=state.STOPPED, published=5)
    after = state.advance(
        before,
        page(100, 50, total=900),
        published=20,
        filtered=25,
        rejected=5,
        future_dated=1,
        at=AT,
    )
    assert (after.current_offset, after.total, after.status) == (150, 900, state.STOPPED)
    assert (after.published, after.filtered, after.rejected, after.future_dated) == (25, 25, 5, 1)
    assert after.last_update == AT.isoformat(timespec="seconds")


def test_apply_command_stop_then_report_running_stays_stopped() -> None:
    stopped = state.apply_command(Progress(task_id="t"), command("stop"))
    assert stopped.status == state.STOPPED
    assert state.apply_command(stopped, command("report", status="running")).status == "stopped"
    assert state.apply_command(stopped, command("start")).status == state.IDLE


def test_apply_command_error_report_keeps_message_until_idle() -> None:
    failed = state.apply_command(
        Progress(task_id="t"), command("report", status="error", error="401")
    )
    assert (failed.status, failed.last_error) == ("error", "401")
    done = state.apply_command(failed, command("report", status="idle", total=77))
    assert (done.status, done.last_error, done.total) == ("idle", "", 77)


def test_newest_prefers_the_further_advanced_of_table_and_mirror() -> None:
    table = Progress(task_id="t", current_offset=1925)
    mirror = Progress(task_id="t", current_offset=2062)
    assert state.newest(table, mirror, "t") is mirror
    assert state.newest(None, mirror, "t") is mirror
    assert state.newest(mirror, table, "t") is mirror
    assert state.newest(None, None, "t") == Progress(task_id="t")


def test_percent_formats_like_the_seed() -> None:
    assert state.percent(Progress(task_id="t", current_offset=156700, total=257449)) == "60.87%"
    assert state.percent(Progress(task_id="t", current_offset=0, total=0)) == "0.00%"
    assert state.percent(Progress(task_id="t", current_offset=10, total=5)) == "100.00%"
