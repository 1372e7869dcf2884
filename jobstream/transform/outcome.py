"""What becomes of one source row: kept as a job, filtered by the 7-day rule, or rejected.

`classify_row` is the single entry point of the pipeline for rows. It never raises for bad data
and never drops a row without saying so: every row yields exactly one of the three values.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from jobstream.errors import DateParseError
from jobstream.records import Job, Reject
from jobstream.transform.dates import parse_collect_date, parse_publish_date
from jobstream.transform.ids import job_id_for_text
from jobstream.transform.mapping import COLLECT_SOURCE, PUBLISH_SOURCE, build_job, map_text_fields
from jobstream.transform.window import (
    cutoff,
    is_suspicious_future,
    stale_reason,
)

__all__ = [
    "Filtered",
    "Kept",
    "Outcome",
    "Rejected",
    "RowContext",
    "classify_row",
    "reject_message",
]


@dataclass(frozen=True)
class RowContext:
    """What every row of one page is judged against.

    `now` is timezone-aware, in the configured zone: `now.date()` is "today" for the 7-day
    rule and relative dates, and `now` is stamped as `crawl_time`. Use the page's fetch time
    so that replaying the page later gives the same decisions and the same messages.
    """

    task_id: str
    now: datetime
    filter_days: int
    demo: bool
    zone: tzinfo = field(init=False, repr=False, compare=False)
    today: date = field(init=False, repr=False, compare=False)
    oldest: date = field(init=False, repr=False, compare=False)
    crawl_time: str = field(init=False, repr=False, compare=False)
    # Date strings already parsed against this context: sources repeat them ("昨天",
    # "3天前", "1月13日", a day without a time), and the answer depends only on the string
    # and `now`. A failure is remembered as its error. Bounded: cleared when full.
    publish_memo: dict[str, date | DateParseError] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    # The collect day depends on the string and the zone alone, never on `now`: contexts of one
    # zone may share this memo (the page agent does, across pages).
    collect_memo: dict[str, date | DateParseError] = field(
        repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        zone = self.now.tzinfo
        if zone is None or self.now.utcoffset() is None:
            raise ValueError("RowContext.now must be timezone-aware")
        object.__setattr__(self, "zone", zone)
        today = self.now.date()
        object.__setattr__(self, "today", today)
        object.__setattr__(self, "oldest", cutoff(today, self.filter_days))
        object.__setattr__(self, "crawl_time", self.now.isoformat(timespec="seconds"))


@dataclass(frozen=True, slots=True)
class Kept:
    """A row inside the window: `job` is the message for `job_data` (key: `job.id`)."""

    job: Job
    suspicious_future: bool


@dataclass(frozen=True, slots=True)
class Filtered:
    """A row outside the window; `reason` names the stale date(s) and the cutoff. The two
    dates as read are kept for explaining the decision (jobstream.trace), not compared."""

    reason: str
    publish: date | None = field(default=None, compare=False)
    collect: date | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A row that cannot be judged; `field` is the source field at fault, or "row"."""

    reason: str
    field: str


Outcome = Kept | Filtered | Rejected


def classify_row(row: object, source_offset: int, ctx: RowContext) -> Outcome:
    """Judge one source row at absolute offset `source_offset` of task `ctx.task_id`."""
    if type(row) is not dict and not isinstance(row, Mapping):  # the ABC check costs 5x
        return Rejected(f"row is {type(row).__name__}, not a JSON object", "row")
    if PUBLISH_SOURCE not in row:
        return Rejected(f"{PUBLISH_SOURCE} is missing", PUBLISH_SOURCE)
    if COLLECT_SOURCE not in row:
        return Rejected(f"{COLLECT_SOURCE} is missing", COLLECT_SOURCE)
    publish = _memoised(ctx.publish_memo, row[PUBLISH_SOURCE], _parse_publish, ctx)
    if type(publish) is DateParseError:
        return Rejected(f"{PUBLISH_SOURCE}: {publish}", PUBLISH_SOURCE)
    collect = _collect_date(row[COLLECT_SOURCE], ctx)
    if type(collect) is DateParseError:
        return Rejected(f"{COLLECT_SOURCE}: {collect}", COLLECT_SOURCE)
    assert isinstance(publish, date) and isinstance(collect, date)
    # within_window(publish, collect, ctx.today, ctx.filter_days), its cutoff computed once
    # for the context instead of once a row.
    if publish < ctx.oldest or collect < ctx.oldest:
        return Filtered(stale_reason(publish, collect, ctx.oldest), publish, collect)
    text = map_text_fields(row)
    job = build_job(
        job_id=job_id_for_text(text),
        text=text,
        publish=publish,
        collect=collect,
        crawl_time=ctx.crawl_time,
        task_id=ctx.task_id,
        source_offset=source_offset,
        demo=ctx.demo,
    )
    future = is_suspicious_future(publish, ctx.today) or is_suspicious_future(collect, ctx.today)
    return Kept(job, future)


# Distinct strings a context remembers per field; a page has at most a few thousand rows.
MEMO_SIZE = 4096


def _parse_publish(value: object, ctx: RowContext) -> date:
    return parse_publish_date(value, ctx.now)


def _parse_collect(value: object, ctx: RowContext) -> date:
    return parse_collect_date(value, ctx.zone)


def _collect_date(value: object, ctx: RowContext) -> date | DateParseError:
    """The collect day, its commonest shape (`2026-01-15 10:30:00`, a naive local time whose
    day is its first ten characters) memoised by that day: every row has its own second, but
    a page's rows share a few days. Anything else goes through the parser whole."""
    if (
        type(value) is str
        and len(value) == 19
        and value.isascii()
        and value[10] == " "
        and value[13] == ":"
        and value[16] == ":"
        and value[11:13].isdigit()
        and value[14:16].isdigit()
        and value[17:19].isdigit()
        and int(value[11:13]) < 24
        and int(value[14:16]) < 60
        and int(value[17:19]) < 60
    ):
        day = _memoised(ctx.collect_memo, value[:10], _parse_collect, ctx)
        if type(day) is date:
            return day
        # Not a date after all: parse the whole value, for the message that names it.
    return _memoised(ctx.collect_memo, value, _parse_collect, ctx)


def _memoised(
    memo: dict[str, date | DateParseError],
    value: object,
    parse: Callable[[object, RowContext], date],
    ctx: RowContext,
) -> date | DateParseError:
    """parse(value, ctx), or the DateParseError it raised; strings are remembered in `memo`."""
    if type(value) is str:
        known = memo.get(value)
        if known is not None:
            return known
    try:
        result: date | DateParseError = parse(value, ctx)
    except DateParseError as exc:
        # Remembered without its traceback: the traceback's frames hold the page being judged
        # (its rows, its messages), and a memo shared across pages kept dozens of them alive.
        result = DateParseError(str(exc))
    if type(value) is str:
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        memo[value] = result
    return result


def reject_message(row: object, source_offset: int, rejected: Rejected, ctx: RowContext) -> Reject:
    """The message for `job_rejects`: why, where, and the row exactly as the API sent it."""
    return Reject(
        task_id=ctx.task_id,
        source_offset=source_offset,
        field=rejected.field,
        reason=rejected.reason,
        row=row,
        crawl_time=ctx.crawl_time,
    )


def row_dates(row: Mapping[str, object], ctx: RowContext) -> tuple[date | None, date | None]:
    """The publish and collect days of a row, parsed exactly as `classify_row` parses them (the
    same memos); None for a date that is missing or cannot be parsed. For explaining a
    decision after the fact (jobstream.trace)."""
    publish: date | DateParseError | None = None
    collect: date | DateParseError | None = None
    if PUBLISH_SOURCE in row:
        publish = _memoised(ctx.publish_memo, row[PUBLISH_SOURCE], _parse_publish, ctx)
    if COLLECT_SOURCE in row:
        collect = _collect_date(row[COLLECT_SOURCE], ctx)
    return (
        publish if isinstance(publish, date) else None,
        collect if isinstance(collect, date) else None,
    )
