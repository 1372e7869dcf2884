"""When to alert: a pure function from (snapshot, previous state, now) to the messages to send.

An alert is keyed by its condition and task. It is sent once when the condition starts, again
every `repeat_after` seconds while it holds (never with 0), and a recovery follows once when it
clears. Every message counts against `max_per_minute`; what does not fit waits for the next
check (an alert that clears before it could be sent is dropped: nobody heard of it, so there is
nothing to recover from). A value the snapshot does not know (lag or broker state None, a task
missing) neither starts nor clears anything.

The conditions:
- task_error: the task's last run failed: its status is `error`, or `running` with failures
  counted (a retry is under way; it is no recovery until it succeeds);
- task_stalled: the task is not stopped, the source has rows beyond its `current_offset`, and
  that offset has not moved for `no_progress_minutes`. The clock starts when the rules see the
  offset change or rows appear, so it restarts with the worker (`Progress.last_update` is no
  measure: every status report moves it). Independent of task_error: a task failing at the
  same offset for that long gets this second, later message too;
- consumer_lag: the lag on job_data is above `lag_threshold` (0: never); it clears at or below
  90 % of the threshold, so a lag hovering around it does not flap;
- broker_down: the broker did not answer the last probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from jobstream.alerts.settings import AlertSettings
from jobstream.alerts.snapshot import Snapshot, TaskSnapshot

Condition = Literal["task_error", "task_stalled", "consumer_lag", "broker_down"]
NoticeKind = Literal["alert", "repeat", "recovery"]
ClearedBy = Literal["", "succeeded", "progressed", "caught_up", "stopped", "below_threshold", "up"]
AlertKey = tuple[Condition, str]
"""(condition, task_id); task_id is "" for the worker-wide conditions."""

RATE_WINDOW = 60.0
LAG_CLEAR_RATIO = 0.9


@dataclass(frozen=True, slots=True)
class Facts:
    """What a message says about its condition: the snapshot's values at the time."""

    status: str = ""
    last_error: str = ""
    consecutive_failures: int = 0
    current_offset: int = 0
    total: int = 0
    stalled_since: float | None = None
    lag: int | None = None
    threshold: int = 0
    cleared_by: ClearedBy = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """One message to send to every webhook."""

    kind: NoticeKind
    condition: Condition
    task_id: str
    started_at: float  # when the condition started (epoch seconds)
    at: float  # when this message was decided
    facts: Facts

    @property
    def key(self) -> AlertKey:
        return (self.condition, self.task_id)


@dataclass(frozen=True, slots=True)
class Active:
    """A condition that holds. `notified_at` is when its last message went out; None while its
    first one waits for room under the rate limit."""

    started_at: float
    facts: Facts
    notified_at: float | None = None


@dataclass(frozen=True, slots=True)
class Cleared:
    """A notified condition that cleared, its recovery not sent yet."""

    active: Active
    at: float
    facts: Facts


@dataclass(frozen=True, slots=True)
class Watch:
    """Where a task's offset was last seen to move, for task_stalled."""

    offset: int
    since: float  # when it moved, or when the task started to have rows left
    waiting: bool  # not stopped and rows left: an offset that stands still is a stall


@dataclass(frozen=True)
class AlertState:
    active: Mapping[AlertKey, Active] = field(default_factory=dict)
    cleared: Mapping[AlertKey, Cleared] = field(default_factory=dict)
    watches: Mapping[str, Watch] = field(default_factory=dict)
    sent: tuple[float, ...] = ()  # when the messages of the last minute went out


@dataclass(frozen=True)
class Decision:
    notices: list[Notice]
    state: AlertState
    deferred: int = 0  # messages due but over the rate limit, left for a later check


def evaluate(
    snapshot: Snapshot, state: AlertState, settings: AlertSettings, now: float
) -> Decision:
    """The messages to send now and the state to remember for the next call."""
    watches = _watch(snapshot.tasks, state.watches, now)
    holding, unknown = _conditions(snapshot, state, watches, settings, now)

    active: dict[AlertKey, Active] = {}
    cleared = dict(state.cleared)
    for key, facts in holding.items():
        previous = state.active.get(key)
        if previous is None and key in cleared:
            # Back before its recovery went out: the same incident, nothing new to say.
            previous = cleared.pop(key).active
        active[key] = (
            Active(started_at=now, facts=facts)
            if previous is None
            else replace(previous, facts=facts)
        )
    for key, previous in state.active.items():
        if key in holding:
            continue
        if key in unknown:
            active[key] = previous
        elif previous.notified_at is not None:
            cleared[key] = Cleared(previous, now, _cleared_facts(key, snapshot, previous.facts))

    due = _due(active, cleared, settings, now)
    recent = tuple(t for t in state.sent if now - t < RATE_WINDOW)
    room = max(0, settings.max_per_minute - len(recent))
    chosen, deferred = due[:room], len(due) - min(room, len(due))
    for notice in chosen:
        if notice.kind == "recovery":
            del cleared[notice.key]
        else:
            active[notice.key] = replace(active[notice.key], notified_at=now)
    new_state = AlertState(
        active=active,
        cleared=cleared,
        watches=watches,
        sent=recent + (now,) * len(chosen),
    )
    return Decision(chosen, new_state, deferred)


def _watch(
    tasks: tuple[TaskSnapshot, ...], previous: Mapping[str, Watch], now: float
) -> dict[str, Watch]:
    watches = dict(previous)  # tasks missing from this snapshot keep theirs
    for task in tasks:
        waiting = task.status != "stopped" and task.rows_left > 0
        seen = previous.get(task.task_id)
        if seen is None or seen.offset != task.current_offset or (waiting and not seen.waiting):
            watches[task.task_id] = Watch(task.current_offset, now, waiting)
        elif seen.waiting != waiting:
            watches[task.task_id] = replace(seen, waiting=waiting)
    return watches


def _conditions(
    snapshot: Snapshot,
    state: AlertState,
    watches: Mapping[str, Watch],
    settings: AlertSettings,
    now: float,
) -> tuple[dict[AlertKey, Facts], set[AlertKey]]:
    """What holds now, and which known alerts this snapshot cannot judge."""
    holding: dict[AlertKey, Facts] = {}
    unknown: set[AlertKey] = set()
    seen = {task.task_id for task in snapshot.tasks}
    unknown.update(key for key in (*state.active, *state.cleared) if key[1] and key[1] not in seen)

    stall_after = settings.no_progress_minutes * 60
    for task in snapshot.tasks:
        facts = _task_facts(task)
        if _last_run_failed(task):
            holding[("task_error", task.task_id)] = facts
        watch = watches[task.task_id]
        if watch.waiting and now - watch.since >= stall_after:
            holding[("task_stalled", task.task_id)] = replace(facts, stalled_since=watch.since)

    lag_key: AlertKey = ("consumer_lag", "")
    threshold = settings.lag_threshold
    if snapshot.lag is None:
        unknown.add(lag_key)
    elif threshold > 0:
        known = lag_key in state.active or lag_key in state.cleared
        limit = threshold * LAG_CLEAR_RATIO if known else threshold
        if snapshot.lag > limit:
            holding[lag_key] = Facts(lag=snapshot.lag, threshold=threshold)

    broker_key: AlertKey = ("broker_down", "")
    if snapshot.broker_up is None:
        unknown.add(broker_key)
    elif not snapshot.broker_up:
        holding[broker_key] = Facts()
    return holding, unknown


def _last_run_failed(task: TaskSnapshot) -> bool:
    """`error`, or `running` again after failed runs: a retry shows `running` until it ends
    (jobstream.progress.rules), and only its success (failures back to 0) is a recovery."""
    return task.status == "error" or (task.status == "running" and task.consecutive_failures > 0)


def _task_facts(task: TaskSnapshot) -> Facts:
    return Facts(
        status=task.status,
        last_error=task.last_error,
        consecutive_failures=task.consecutive_failures,
        current_offset=task.current_offset,
        total=task.total,
    )


def _cleared_facts(key: AlertKey, snapshot: Snapshot, last: Facts) -> Facts:
    """The values at recovery, and why it cleared."""
    condition, task_id = key
    if condition == "consumer_lag":
        return replace(last, lag=snapshot.lag, cleared_by="below_threshold")
    if condition == "broker_down":
        return replace(last, cleared_by="up")
    task = next(t for t in snapshot.tasks if t.task_id == task_id)
    facts = replace(_task_facts(task), stalled_since=last.stalled_since)
    if task.status == "stopped":
        return replace(facts, cleared_by="stopped")
    if condition == "task_error":
        return replace(facts, cleared_by="succeeded")
    if task.rows_left == 0:
        return replace(facts, cleared_by="caught_up")
    return replace(facts, cleared_by="progressed")


def _due(
    active: Mapping[AlertKey, Active],
    cleared: Mapping[AlertKey, Cleared],
    settings: AlertSettings,
    now: float,
) -> list[Notice]:
    """Every message due now, most urgent first: new alerts, recoveries, reminders."""
    first: list[Notice] = []
    recoveries: list[Notice] = []
    repeats: list[Notice] = []
    for (condition, task_id), alert in active.items():
        if alert.notified_at is None:
            kind: NoticeKind = "alert"
        elif settings.repeat_after > 0 and now - alert.notified_at >= settings.repeat_after:
            kind = "repeat"
        else:
            continue
        notice = Notice(kind, condition, task_id, alert.started_at, now, alert.facts)
        (first if kind == "alert" else repeats).append(notice)
    for (condition, task_id), gone in cleared.items():
        started = gone.active.started_at
        recoveries.append(Notice("recovery", condition, task_id, started, gone.at, gone.facts))
    order = _CONDITION_ORDER
    first.sort(key=lambda n: (n.started_at, order[n.condition], n.task_id))
    recoveries.sort(key=lambda n: (n.at, order[n.condition], n.task_id))
    repeats.sort(key=lambda n: (n.started_at, order[n.condition], n.task_id))
    return first + recoveries + repeats


_CONDITION_ORDER: dict[Condition, int] = {
    "broker_down": 0,
    "task_error": 1,
    "task_stalled": 2,
    "consumer_lag": 3,
}
