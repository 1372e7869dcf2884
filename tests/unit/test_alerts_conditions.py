"""When alerts fire, repeat, recover and wait for the rate limit: the pure rules, step by step."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from jobstream.alerts.conditions import AlertState, Notice, evaluate
from jobstream.alerts.settings import AlertSettings
from jobstream.alerts.snapshot import Snapshot, TaskSnapshot
from jobstream.records import TaskStatus

T0 = 1_768_444_200.0  # 2026-01-15 10:30:00 +08:00
SETTINGS = AlertSettings(no_progress_minutes=30, lag_threshold=1000, repeat_after=0)
NEVER_STALLED = 7 * 24 * 60  # minutes: keeps task_stalled out of tests about other conditions


def task(
    task_id: str = "t1",
    status: TaskStatus = "idle",
    offset: int = 100,
    total: int = 100,
    error: str = "",
) -> TaskSnapshot:
    return TaskSnapshot(task_id, status, offset, total, error, 1 if error else 0)


def healthy(*tasks: TaskSnapshot) -> Snapshot:
    return Snapshot(tasks=tasks or (task(),), lag=0, broker_up=True)


class Run:
    """Feeds snapshots to the rules at given times and keeps every notice they return."""

    def __init__(self, settings: AlertSettings = SETTINGS) -> None:
        self.settings = settings
        self.state = AlertState()
        self.sent: list[Notice] = []

    def at(self, now: float, snapshot: Snapshot) -> list[Notice]:
        decision = evaluate(snapshot, self.state, self.settings, now)
        self.state = decision.state
        self.sent.extend(decision.notices)
        return decision.notices

    def kinds(self) -> list[tuple[str, str, str]]:
        return [(n.kind, n.condition, n.task_id) for n in self.sent]


def failing(task_id: str = "t1") -> TaskSnapshot:
    return task(task_id, "error", 40, 100, "HTTP 503 after 3 attempts")


def test_rules_task_error_fires_once() -> None:
    run = Run()
    notices = run.at(T0, healthy(failing()))

    assert [(n.kind, n.condition, n.task_id) for n in notices] == [("alert", "task_error", "t1")]
    assert notices[0].facts.last_error == "HTTP 503 after 3 attempts"
    assert notices[0].started_at == T0


def test_rules_task_error_while_it_holds_is_suppressed() -> None:
    run = Run(AlertSettings(no_progress_minutes=NEVER_STALLED, repeat_after=0))
    run.at(T0, healthy(failing()))

    for minute in range(1, 120):
        assert run.at(T0 + 60 * minute, healthy(failing())) == []
    assert len(run.sent) == 1


def test_rules_task_error_cleared_sends_one_recovery() -> None:
    run = Run()
    run.at(T0, healthy(failing()))
    run.at(T0 + 15, healthy(failing()))

    recovered = run.at(T0 + 30, healthy(task(offset=100)))
    later = run.at(T0 + 45, healthy(task(offset=100)))

    assert [(n.kind, n.condition) for n in recovered] == [("recovery", "task_error")]
    assert recovered[0].started_at == T0 and recovered[0].at == T0 + 30
    assert recovered[0].facts.cleared_by == "succeeded"
    assert later == []


def test_rules_task_error_retry_running_is_no_recovery() -> None:
    """Each retry reports `running` (failures still counted) until it ends: no recovery, no
    second alert, however often a check falls on a retry."""
    retrying = TaskSnapshot("t1", "running", 40, 100, "HTTP 503 after 3 attempts", 1)
    run = Run(AlertSettings(no_progress_minutes=NEVER_STALLED, repeat_after=0))

    for minute in range(10):
        run.at(T0 + 60 * minute, healthy(failing() if minute % 2 else retrying))
    run.at(T0 + 600, healthy(task(status="running", offset=60)))  # failures back to 0: a success

    assert run.kinds() == [("alert", "task_error", "t1"), ("recovery", "task_error", "t1")]
    assert run.sent[1].facts.cleared_by == "succeeded"


def test_rules_task_error_stopped_by_user_recovers_as_stopped() -> None:
    run = Run()
    run.at(T0, healthy(failing()))

    recovered = run.at(T0 + 30, healthy(task(status="stopped", offset=40)))

    assert recovered[0].facts.cleared_by == "stopped"


def test_rules_task_error_again_after_recovery_fires_again() -> None:
    run = Run()
    run.at(T0, healthy(failing()))
    run.at(T0 + 30, healthy(task()))
    run.at(T0 + 60, healthy(failing()))

    assert run.kinds() == [
        ("alert", "task_error", "t1"),
        ("recovery", "task_error", "t1"),
        ("alert", "task_error", "t1"),
    ]


def test_rules_repeat_after_reminds_once_per_interval() -> None:
    run = Run(AlertSettings(no_progress_minutes=NEVER_STALLED, repeat_after=3600))
    for minute in range(0, 150, 1):
        run.at(T0 + 60 * minute, healthy(failing()))

    assert [(n.kind, n.at - T0) for n in run.sent] == [
        ("alert", 0),
        ("repeat", 3600),
        ("repeat", 7200),
    ]
    assert all(n.started_at == T0 for n in run.sent)


def test_rules_repeat_after_zero_never_reminds() -> None:
    run = Run(AlertSettings(no_progress_minutes=NEVER_STALLED, repeat_after=0))
    for hour in range(48):
        run.at(T0 + 3600 * hour, healthy(failing()))

    assert len(run.sent) == 1


def test_rules_several_tasks_are_independent() -> None:
    run = Run()
    run.at(T0, healthy(failing("a"), task("b")))
    run.at(T0 + 15, healthy(failing("a"), failing("b")))
    run.at(T0 + 30, healthy(task("a"), failing("b")))
    run.at(T0 + 45, healthy(task("a"), task("b")))

    assert run.kinds() == [
        ("alert", "task_error", "a"),
        ("alert", "task_error", "b"),
        ("recovery", "task_error", "a"),
        ("recovery", "task_error", "b"),
    ]


def test_rules_rate_limit_defers_messages_over_the_budget_then_sends_them() -> None:
    run = Run(AlertSettings(max_per_minute=2, repeat_after=0))
    five = healthy(*(failing(f"t{i}") for i in range(5)))

    decision = evaluate(five, run.state, run.settings, T0)
    run.state = decision.state
    assert len(decision.notices) == 2 and decision.deferred == 3

    assert run.at(T0 + 30, five) == []  # still the same minute
    assert len(run.at(T0 + 61, five)) == 2
    assert len(run.at(T0 + 122, five)) == 1
    assert run.at(T0 + 183, five) == []
    assert sorted(n.task_id for n in decision.notices + run.sent) == [f"t{i}" for i in range(5)]


def test_rules_rate_limit_counts_a_rolling_minute() -> None:
    run = Run(AlertSettings(max_per_minute=3, repeat_after=0))
    for second in range(0, 600, 5):
        # A new task fails every 5 s: far more than 3 a minute.
        tasks = [failing(f"t{i}") for i in range(second // 5 + 1)]
        run.at(T0 + second, healthy(*tasks))

    times = sorted(n.at for n in run.sent)
    assert all(b - a >= 60 for a, b in zip(times, times[3:], strict=False))


def test_rules_alert_cleared_before_it_could_be_sent_is_dropped() -> None:
    run = Run(AlertSettings(max_per_minute=1, repeat_after=0))
    run.at(T0, healthy(failing("a"), failing("b")))  # only a fits
    run.at(T0 + 30, healthy(failing("a"), task("b")))  # b clears, unsent
    run.at(T0 + 90, healthy(failing("a"), task("b")))

    assert run.kinds() == [("alert", "task_error", "a")]


def test_rules_recovery_waits_for_the_rate_limit_and_is_not_lost() -> None:
    run = Run(AlertSettings(max_per_minute=1, repeat_after=0))
    run.at(T0, healthy(failing()))
    run.at(T0 + 20, healthy(task()))  # cleared within the same minute: recovery waits

    assert run.kinds() == [("alert", "task_error", "t1")]
    run.at(T0 + 61, healthy(task()))
    assert run.kinds()[-1] == ("recovery", "task_error", "t1")
    assert run.sent[-1].at == T0 + 20  # says when it cleared, not when it was sent


def test_rules_condition_back_before_its_recovery_went_out_stays_one_incident() -> None:
    run = Run(AlertSettings(max_per_minute=1, repeat_after=0))
    run.at(T0, healthy(failing()))
    run.at(T0 + 20, healthy(task()))  # recovery held back by the rate limit
    run.at(T0 + 40, healthy(failing()))  # failing again before it went out
    for second in range(60, 600, 15):
        run.at(T0 + second, healthy(failing()))

    assert run.kinds() == [("alert", "task_error", "t1")]


def test_rules_no_progress_fires_after_the_configured_time_with_rows_left() -> None:
    run = Run()
    stuck = healthy(task(status="idle", offset=40, total=100))
    for minute in range(0, 30):
        assert run.at(T0 + 60 * minute, stuck) == []

    notices = run.at(T0 + 60 * 30, stuck)

    assert [(n.kind, n.condition) for n in notices] == [("alert", "task_stalled")]
    assert notices[0].facts.stalled_since == T0
    assert notices[0].facts.current_offset == 40 and notices[0].facts.total == 100


def test_rules_no_progress_without_rows_left_never_fires() -> None:
    run = Run()
    for hour in range(24):
        run.at(T0 + 3600 * hour, healthy(task(offset=100, total=100)))

    assert run.sent == []


def test_rules_no_progress_stopped_task_never_fires() -> None:
    run = Run()
    for hour in range(24):
        run.at(T0 + 3600 * hour, healthy(task(status="stopped", offset=40, total=100)))

    assert run.sent == []


def test_rules_no_progress_clock_restarts_when_the_offset_moves() -> None:
    run = Run()
    for minute in range(0, 120, 1):
        # Advances one row every 20 minutes: slow, never stalled for 30.
        offset = 40 + minute // 20
        run.at(T0 + 60 * minute, healthy(task(status="running", offset=offset, total=100)))

    assert run.sent == []


def test_rules_no_progress_clock_starts_when_rows_appear() -> None:
    run = Run()
    for hour in range(5):  # caught up for hours
        run.at(T0 + 3600 * hour, healthy(task(offset=100, total=100)))
    grown = T0 + 5 * 3600
    assert run.at(grown, healthy(task(offset=100, total=150))) == []

    assert run.at(grown + 29 * 60, healthy(task(offset=100, total=150))) == []
    fired = run.at(grown + 30 * 60, healthy(task(offset=100, total=150)))
    assert [n.condition for n in fired] == ["task_stalled"]
    assert fired[0].facts.stalled_since == grown


def test_rules_no_progress_recovers_when_the_offset_moves() -> None:
    run = Run()
    run.at(T0, healthy(task(offset=40, total=100)))
    run.at(T0 + 1800, healthy(task(offset=40, total=100)))

    recovered = run.at(T0 + 1815, healthy(task(status="running", offset=50, total=100)))

    assert [(n.kind, n.facts.cleared_by) for n in recovered] == [("recovery", "progressed")]
    assert recovered[0].facts.stalled_since == T0


def test_rules_no_progress_recovers_as_caught_up_when_no_rows_are_left() -> None:
    run = Run()
    run.at(T0, healthy(task(offset=40, total=100)))
    run.at(T0 + 1800, healthy(task(offset=40, total=100)))

    recovered = run.at(T0 + 1815, healthy(task(offset=40, total=40)))  # source reset smaller

    assert [(n.kind, n.facts.cleared_by) for n in recovered] == [("recovery", "caught_up")]


def test_rules_task_failing_at_one_offset_is_also_stalled_later() -> None:
    run = Run()
    for minute in range(0, 31):
        run.at(T0 + 60 * minute, healthy(failing()))

    assert run.kinds() == [("alert", "task_error", "t1"), ("alert", "task_stalled", "t1")]


def test_rules_lag_above_threshold_fires_once_and_clears_at_ninety_percent() -> None:
    run = Run()  # threshold 1000
    for second, lag in enumerate([500, 1000, 1001, 5000, 950, 901, 900, 1000, 1001]):
        run.at(T0 + 15 * second, Snapshot(tasks=(task(),), lag=lag, broker_up=True))

    assert [(n.kind, n.condition, n.facts.lag) for n in run.sent] == [
        ("alert", "consumer_lag", 1001),
        ("recovery", "consumer_lag", 900),
        ("alert", "consumer_lag", 1001),
    ]
    assert run.sent[0].task_id == "" and run.sent[0].facts.threshold == 1000


def test_rules_lag_threshold_zero_never_fires() -> None:
    run = Run(AlertSettings(lag_threshold=0))
    run.at(T0, Snapshot(tasks=(task(),), lag=10**9, broker_up=True))

    assert run.sent == []


def test_rules_broker_down_fires_once_and_recovers() -> None:
    run = Run()
    down = Snapshot(tasks=(task(),), lag=None, broker_up=False)
    up = Snapshot(tasks=(task(),), lag=0, broker_up=True)
    for second in range(0, 120, 15):
        run.at(T0 + second, down)
    run.at(T0 + 120, up)
    run.at(T0 + 135, up)

    assert run.kinds() == [("alert", "broker_down", ""), ("recovery", "broker_down", "")]
    assert run.sent[1].facts.cleared_by == "up"


def test_rules_unknown_values_neither_start_nor_clear_alerts() -> None:
    run = Run()
    run.at(T0, Snapshot(tasks=(failing(),), lag=5000, broker_up=False))
    # Nothing known: no task, no lag, no broker state.
    for second in range(15, 300, 15):
        run.at(T0 + second, Snapshot(tasks=(), lag=None, broker_up=None))

    assert run.kinds() == [
        ("alert", "broker_down", ""),
        ("alert", "task_error", "t1"),
        ("alert", "consumer_lag", ""),
    ]
    assert len(run.state.active) == 3


def test_rules_unknown_values_alone_start_nothing() -> None:
    run = Run()
    for minute in range(120):
        run.at(T0 + 60 * minute, Snapshot(tasks=(), lag=None, broker_up=None))

    assert run.sent == []


def test_rules_state_is_not_modified_in_place() -> None:
    state = AlertState()
    first = evaluate(healthy(failing()), state, SETTINGS, T0)
    again = evaluate(healthy(failing()), state, SETTINGS, T0 + 15)

    assert state == AlertState()
    assert [n.kind for n in first.notices] == [n.kind for n in again.notices] == ["alert"]


# -- whatever happens, the messages tell a consistent story ---------------------------------

statuses = st.sampled_from(["idle", "running", "stopped", "error"])
task_states = st.tuples(statuses, st.integers(0, 3), st.integers(0, 3))
snapshots = st.tuples(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), task_states, max_size=3),
    st.one_of(st.none(), st.integers(0, 2000)),
    st.one_of(st.none(), st.booleans()),
    st.integers(1, 400),  # seconds since the previous snapshot
)


@given(
    steps=st.lists(snapshots, max_size=60),
    max_per_minute=st.integers(1, 5),
    repeat_after=st.sampled_from([0, 300]),
)
def test_rules_any_history_alternates_alert_and_recovery_within_the_rate(
    steps: list, max_per_minute: int, repeat_after: int
) -> None:
    settings = AlertSettings(
        no_progress_minutes=5,
        lag_threshold=1000,
        max_per_minute=max_per_minute,
        repeat_after=repeat_after,
    )
    run = Run(settings)
    now = T0
    sent_at: list[float] = []
    for tasks, lag, broker_up, gap in steps:
        now += gap
        snapshot = Snapshot(
            tasks=tuple(
                TaskSnapshot(tid, status, 10 * offset, 10 * offset + 10 * left, "e", 1)
                for tid, (status, offset, left) in sorted(tasks.items())
            ),
            lag=lag,
            broker_up=broker_up,
        )
        sent_at.extend(now for _ in run.at(now, snapshot))

    open_alerts: Counter[tuple[str, str]] = Counter()
    for notice in run.sent:
        key = (notice.condition, notice.task_id)
        if notice.kind == "alert":
            assert open_alerts[key] == 0, f"second alert without a recovery: {key}"
            open_alerts[key] += 1
        else:
            assert open_alerts[key] == 1, f"{notice.kind} without an alert: {key}"
            if notice.kind == "recovery":
                open_alerts[key] -= 1
    for i, when in enumerate(sent_at):
        assert sum(1 for t in sent_at[: i + 1] if when - t < 60) <= max_per_minute


def test_task_snapshot_from_progress_takes_what_the_rules_need() -> None:
    from jobstream.records import Progress

    progress = Progress(
        task_id="t9",
        current_offset=40,
        total=100,
        status="error",
        last_error="boom",
        consecutive_failures=4,
    )

    snapshot = TaskSnapshot.from_progress(progress)

    assert snapshot == TaskSnapshot("t9", "error", 40, 100, "boom", 4)
    assert snapshot.rows_left == 60
