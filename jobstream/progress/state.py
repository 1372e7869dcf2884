"""How a task's progress changes: pure functions from (progress, event) to the next progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jobstream.records import Command, Progress, RawPage

IDLE, RUNNING, STOPPED, ERROR = "idle", "running", "stopped", "error"
STATUSES = (IDLE, RUNNING, STOPPED, ERROR)


def initial(task_id: str) -> Progress:
    return Progress(task_id=task_id)


def newest(table_value: Progress | None, mirrored: Progress | None, task_id: str) -> Progress:
    """The further advanced of the table and the mirror.

    The mirror only records pages whose messages the broker acknowledged, so when it is ahead
    the table lost its tail (a wiped broker, or a changelog recovered short).
    """
    candidates = [p for p in (table_value, mirrored) if p is not None]
    if not candidates:
        return initial(task_id)
    return max(candidates, key=lambda p: p.current_offset)


@dataclass(frozen=True)
class PagePlan:
    """What to do with one raw page: apply rows[first_row:], skip it, or refuse it (a gap)."""

    action: str  # "apply" | "skip" | "gap"
    reason: str = ""
    first_row: int = 0


def plan_page(progress: Progress, page: RawPage) -> PagePlan:
    """Each source offset is applied once: pages below current_offset were applied already
    (a refetch after a restart), a page beyond it would leave a hole, and a page that
    overlaps it (the batch size changed) is applied from current_offset on."""
    current = progress.current_offset
    if page.next_offset < page.offset + len(page.rows):
        return PagePlan(
            "gap", f"page {page.offset}..{page.next_offset} claims {len(page.rows)} rows"
        )
    if page.offset > current:
        return PagePlan(
            "gap", f"page starts at {page.offset} but the next offset to apply is {current}"
        )
    if page.next_offset <= current and page.rows:
        return PagePlan("skip", f"already applied up to {current}")
    if page.next_offset <= current:
        return PagePlan("skip", f"empty page, already at {current}")
    return PagePlan("apply", first_row=current - page.offset)


def advance(
    progress: Progress,
    page: RawPage,
    *,
    published: int,
    filtered: int,
    rejected: int,
    future_dated: int,
    at: datetime,
) -> Progress:
    """The progress after applying `page`; the status is left to the commands."""
    return progress.derive(
        current_offset=page.next_offset,
        total=max(page.total, page.next_offset),
        last_update=at.isoformat(timespec="seconds"),
        published=progress.published + published,
        filtered=progress.filtered + filtered,
        rejected=progress.rejected + rejected,
        future_dated=progress.future_dated + future_dated,
    )


def apply_command(progress: Progress, command: Command) -> Progress:
    """start/stop come from users; reports come from the crawler and never undo a stop."""
    changes: dict[str, object] = {"last_update": command.at}
    if command.action == "stop":
        changes["status"] = STOPPED
    elif command.action == "start":
        changes["status"] = IDLE
        changes["last_error"] = ""
    elif command.action == "report":
        if progress.status != STOPPED and command.status in STATUSES:
            changes["status"] = command.status
        if command.status == ERROR:
            changes["last_error"] = command.error or "unknown error"
        elif command.status == IDLE:
            changes["last_error"] = ""
        if command.total is not None:
            changes["total"] = command.total
    return progress.derive(**changes)


def percent(progress: Progress) -> str:
    """Seed §5.4's "60.87%"."""
    if progress.total <= 0:
        return "0.00%"
    return f"{min(progress.current_offset / progress.total, 1.0) * 100:.2f}%"
