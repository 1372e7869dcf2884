"""How a task's progress changes: pure functions from (progress, event) to the next progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from msgspec.structs import replace

from jobstream.records import Command, Progress, RawPage


def initial(task_id: str, source: str) -> Progress:
    return Progress(task_id=task_id, source=source)


def resume(
    table_value: Progress | None, mirrored: Progress | None, task_id: str, source: str
) -> tuple[Progress, list[str]]:
    """Where a task stands: the further advanced of the table and the mirror among those that
    belong to `source`, and a note for each one set aside because it belongs to another API.

    The mirror only records pages whose messages the broker acknowledged, so when it is ahead
    the table lost its tail (a wiped broker, or a changelog recovered short). Offsets of another
    API (the demo simulator, before the switch to the real one) mean nothing here: resuming
    from them would skip that many real rows.
    """
    candidates, notes = [], []
    for where, value in (("table", table_value), ("SQLite mirror", mirrored)):
        if value is None:
            continue
        if value.source != source:
            notes.append(
                f"progress in the {where} belongs to {value.source or 'an unrecorded API'} "
                f"(offset {value.current_offset}), not {source}: not resumed from"
            )
            continue
        candidates.append(value)
    if not candidates:
        return initial(task_id, source), notes
    return max(candidates, key=lambda p: p.current_offset), notes


PageAction = Literal["apply", "skip", "gap"]


@dataclass(frozen=True)
class PagePlan:
    """What to do with one raw page: apply rows[first_row:], skip it, or refuse it (a gap)."""

    action: PageAction
    reason: str = ""
    first_row: int = 0


def plan_page(progress: Progress, page: RawPage) -> PagePlan:
    """Each source offset is applied once: pages below current_offset were applied already
    (a refetch after a restart), a page beyond it would leave a hole, and a page that
    overlaps it (the batch size changed) is applied from current_offset on."""
    current = progress.current_offset
    if page.source != progress.source:
        return PagePlan("skip", f"page from {page.source}, progress belongs to {progress.source}")
    if page.next_offset < page.offset + len(page.rows):
        return PagePlan(
            "gap", f"page {page.offset}..{page.next_offset} claims {len(page.rows)} rows"
        )
    if page.offset > current:
        return PagePlan(
            "gap", f"page starts at {page.offset} but the next offset to apply is {current}"
        )
    if page.next_offset <= current:
        return PagePlan("skip", f"already applied up to {current}")
    return PagePlan("apply", first_row=current - page.offset)


@dataclass(frozen=True)
class Counts:
    """What the rows of one applied page became."""

    published: int = 0
    filtered: int = 0
    rejected: int = 0
    future_dated: int = 0


def advance(progress: Progress, page: RawPage, counts: Counts, at: str) -> Progress:
    """The progress after applying `page`; the status is left to the commands."""
    return replace(
        progress,
        current_offset=page.next_offset,
        total=max(page.total, page.next_offset),
        last_update=at,
        published=progress.published + counts.published,
        filtered=progress.filtered + counts.filtered,
        rejected=progress.rejected + counts.rejected,
        skipped=progress.skipped + max(0, page.next_offset - page.offset - len(page.rows)),
        future_dated=progress.future_dated + counts.future_dated,
    )


def apply_command(progress: Progress, command: Command) -> Progress:
    """start/stop come from users and win over the crawler: a report never undoes a stop.

    A failed run puts the task in `error` and keeps it there, with its reason and its time,
    until a run succeeds, which keeps the error as resolved; runs failing again at the same
    offset keep `stuck_since`."""
    at = command.at
    stopped = progress.status == "stopped"
    if command.action == "stop":
        return replace(progress, status="stopped", last_update=at)
    if command.action == "start":
        return replace(progress, status="idle" if stopped else progress.status, last_update=at)
    if command.action == "anomaly":
        return replace(
            progress,
            cursor_anomalies=progress.cursor_anomalies + 1,
            last_anomaly=f"{at} {command.error}",
            last_update=at,
        )
    if command.action == "deduped":
        # What the dedupe agent made of the task's kept jobs; the offsets are the page agent's.
        if (command.source, command.source_resets) != (progress.source, progress.source_resets):
            # Jobs of progress set aside since (another API, or before a source reset): their
            # rows are no longer among this progress's offsets.
            return progress
        return replace(
            progress,
            published=progress.published + (command.published or 0),
            duplicates=progress.duplicates + (command.duplicates or 0),
        )
    if command.action == "reset":
        # The offsets and what became of their rows start over; the task's state, its errors
        # and their times stay.
        return replace(
            progress,
            total=command.total or 0,
            current_offset=0,
            failing_offset=None,
            published=0,
            filtered=0,
            rejected=0,
            skipped=0,
            future_dated=0,
            duplicates=0,
            last_update=at,
            cursor_anomalies=progress.cursor_anomalies + 1,
            last_anomaly=f"{at} {command.error}",
            source_resets=progress.source_resets + 1,
            last_reset_at=at,
        )
    # A report from the crawl loop about one run.
    total = progress.total if command.total is None else command.total
    if command.run == "running":
        return replace(progress, status=progress.status if stopped else "running", last_update=at)
    if command.run == "succeeded":
        # The error this success ends is kept as resolved, with when it happened and when it
        # ended, so that the operator sees it went away rather than that it vanished.
        resolved = {}
        if progress.last_error:
            resolved = {
                "resolved_error": progress.last_error,
                "resolved_error_at": progress.last_error_at,
                "resolved_at": at,
            }
        return replace(
            progress,
            status=progress.status if stopped else "idle",
            total=total,
            last_update=at,
            last_error="",
            last_error_at="",
            consecutive_failures=0,
            stuck_since="",
            failing_offset=None,
            last_success_at=at,
            **resolved,
        )
    same_place = progress.consecutive_failures > 0 and progress.failing_offset == command.offset
    return replace(
        progress,
        status=progress.status if stopped else "error",
        total=total,
        last_update=at,
        last_error=command.error or "unknown error",
        last_error_at=at,
        consecutive_failures=progress.consecutive_failures + 1,
        stuck_since=progress.stuck_since if same_place and progress.stuck_since else at,
        failing_offset=command.offset,
    )


def percent(progress: Progress) -> str:
    """Seed §5.4's "60.87%"."""
    if progress.total <= 0:
        return "0.00%"
    return f"{min(progress.current_offset / progress.total, 1.0) * 100:.2f}%"
