"""Alerts from a real worker, broker and simulator to robots on loopback (tests/robots.py): each
condition produced for real fires once to every webhook type (WeCom, DingTalk signed, Feishu
signed, JSON signed), each body accepted by the receiver's check of that robot's documented
format and signature; a condition that holds is not repeated (unless `repeat_after` says so),
and its recovery is sent once.

Each test starts its own worker (the alert settings are read at start) with
`alerts.check_interval: 1`. `task_stalled` needs `no_progress_minutes` of standing still: 0.1
here (6 s; 30 minutes by default), much longer than a page takes in the test.

Run with `-s` to see what each robot received for a task_error alert.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobstream.alerts.texts import ALERT_TAG, RECOVERY_TAG
from tests.harness import TASK_ID, Broker, Simulator, Worker, http, wait_until
from tests.robots import BODIES, Received, ThreadedReceiver

pytestmark = pytest.mark.slow

KINDS = tuple(BODIES)  # wecom, dingtalk, feishu, json
Event = tuple[str, str]  # (alert | repeat | recovery, condition)
# Generous: two cores shared with other work.
ARRIVES_WITHIN = 60.0


@pytest.fixture
def robots() -> Iterator[ThreadedReceiver]:
    receiver = ThreadedReceiver()
    yield receiver
    receiver.stop()


def alerts_section(robots: ThreadedReceiver, **settings: Any) -> dict[str, Any]:
    """All four robots, each signed where its type signs; one look a second; no reminders and
    no lag alert unless asked for."""
    hooks = []
    for kind in KINDS:
        hook = {"type": kind, "url": robots.robots.url(kind), "name": f"{kind} robot"}
        if kind in robots.robots.secrets:
            hook["secret"] = robots.robots.secrets[kind]
        hooks.append(hook)
    return {
        "webhooks": hooks,
        "check_interval": 1,
        "repeat_after": 24 * 3600,
        "lag_threshold": 0,
        **settings,
    }


def what(got: Received) -> Event:
    """(kind, condition) as the message's text says it, whatever the robot; for the JSON
    endpoint, its fields must say the same."""
    text = got.text
    if RECOVERY_TAG in text:
        kind = "recovery"
    else:
        assert ALERT_TAG in text, text
        kind = "repeat" if "（已持续" in text else "alert"
    if "Kafka 消费积压" in text:
        condition = "consumer_lag"
    elif "Kafka 无法连接" in text or "Kafka 已恢复连接" in text:
        condition = "broker_down"
    elif "没有进展" in text or "无进展" in text:
        condition = "task_stalled"
    elif "采集失败" in text or "采集已恢复" in text:
        condition = "task_error"
    else:
        raise AssertionError(f"no condition named in {text!r}")
    if condition.startswith("task_"):
        assert TASK_ID in text, text
    if got.kind == "json":
        assert (got.body["kind"], got.body["condition"]) == (kind, condition), got.body
        assert got.body["task_id"] == (TASK_ID if condition.startswith("task_") else None)
    return kind, condition


def events(robots: ThreadedReceiver, kind: str) -> list[Event]:
    """What one robot accepted, in order; it must have refused nothing."""
    got = robots.received(kind)
    refused = [(g.answer, g.raw[:300]) for g in got if not g.accepted]
    assert not refused, f"{kind} refused: {refused}"
    return [what(g) for g in got]


def counts(robots: ThreadedReceiver, condition: str) -> dict[str, Counter[str]]:
    """Per robot: how many alerts, repeats and recoveries of `condition` it accepted."""
    return {kind: Counter(k for k, c in events(robots, kind) if c == condition) for kind in KINDS}


def wait_for(
    robots: ThreadedReceiver, condition: str, kind: str, n: int = 1, within: float = ARRIVES_WITHIN
) -> None:
    """Until every robot has accepted at least `n` messages of this kind and condition."""
    wait_until(
        lambda: all(c[kind] >= n for c in counts(robots, condition).values()),
        within,
        f"{n} {condition} {kind} at every robot (have {counts(robots, condition)})",
    )


def assert_each_robot_got(robots: ThreadedReceiver, condition: str, **expected: int) -> None:
    expect = Counter({k: v for k, v in expected.items() if v})
    assert counts(robots, condition) == dict.fromkeys(KINDS, expect)


def show(robots: ThreadedReceiver, condition: str, kind: str) -> None:
    """Print the first message of this kind and condition each robot accepted, as sent."""
    for robot in KINDS:
        got = next(g for g in robots.received(robot) if what(g) == (kind, condition))
        path = {"dingtalk": "?" + "&".join(f"{k}=…" for k in got.query)}.get(robot, "")
        signed = {h: v for h, v in got.headers.items() if h.lower().startswith("x-jobstream-")}
        print(f"\n--- {robot} {kind} {condition} {path} {signed or ''}".rstrip())
        print(json.dumps(got.body, ensure_ascii=False, indent=2))


def runs_of(worker: Worker) -> int:
    """Crawl runs the worker started so far."""
    return worker.log().count("crawl run starts")


def test_task_error_and_stall_alert_once_each_then_recover(
    robots: ThreadedReceiver,
    simulator_factory: Callable[..., Simulator],
    worker_factory: Callable[..., Worker],
) -> None:
    """The task's data calls fail, slowly (each answer waits, then 503): every run fails, the
    offset stands still halfway. One task_error alert, none again over many failed runs (each
    run shows `running` for a while: a check that sees it must not take it for a recovery);
    after `no_progress_minutes` (0.1: 6 s, while a page takes under half a second before the
    fault) one task_stalled alert too. Then the API answers again: the run succeeds and reaches
    the end, one recovery of each."""
    sim = simulator_factory("--total", "300")
    sim.faults(latency_ms=400)  # slow enough to stop the crawl halfway
    worker = worker_factory(
        api=sim.api(batch_size=20, max_pages_in_flight=1, max_retries=0, request_timeout=10),
        crawler={"interval": 1},
        alerts=alerts_section(robots, no_progress_minutes=0.1),
    ).start()
    worker.wait_ready(90)
    worker.wait_status(lambda s: s["current_offset"] > 0, timeout=60)
    sim.faults(latency_ms=1500, fail_rate=1.0, fail_rate_status=503)
    failing = worker.wait_status(lambda s: s["status"] == "error", timeout=60)
    stuck_at = failing["current_offset"]
    assert 0 < stuck_at < 300, failing

    wait_for(robots, "task_error", "alert")
    assert_each_robot_got(robots, "task_error", alert=1)
    failures = worker.status()["consecutive_failures"]
    worker.wait_status(lambda s: s["consecutive_failures"] >= failures + 3, timeout=60)
    assert_each_robot_got(robots, "task_error", alert=1)
    show(robots, "task_error", "alert")

    # The offset has stood still since the fault; 6 s later the stall is reported.
    wait_for(robots, "task_stalled", "alert")
    assert worker.status()["current_offset"] == stuck_at
    assert_each_robot_got(robots, "task_error", alert=1)
    assert_each_robot_got(robots, "task_stalled", alert=1)

    sim.faults(clear=True)
    worker.wait_status(lambda s: s["current_offset"] == 300 and s["status"] == "idle")
    wait_for(robots, "task_error", "recovery")
    wait_for(robots, "task_stalled", "recovery")
    runs = runs_of(worker)
    wait_until(lambda: runs_of(worker) >= runs + 3, 30, "three more (successful) runs")
    assert_each_robot_got(robots, "task_error", alert=1, recovery=1)
    assert_each_robot_got(robots, "task_stalled", alert=1, recovery=1)
    assert_each_robot_got(robots, "consumer_lag")
    assert_each_robot_got(robots, "broker_down")
    # Why each cleared, as the values sent with it say: the error by a run that succeeded; the
    # stall by the offset moving on, caught up with the source when the check that saw it
    # came after the run's last page (the run crawls the rest in under a second).
    for got in robots.received("json"):
        if got.body["kind"] == "recovery":
            details = got.body["details"]
            if got.body["condition"] == "task_error":
                assert details["cleared_by"] == "succeeded", details
            else:
                assert details["current_offset"] > stuck_at, details
                at_end = details["current_offset"] == details["total"] == 300
                assert details["cleared_by"] == ("caught_up" if at_end else "progressed"), details


def consume(worker: Worker, n: int) -> None:
    """Exactly `n` jobs through `GET /consume`."""
    left = n

    def done() -> bool:
        nonlocal left
        url = f"{worker.url}/consume?batch_size={min(left, 100)}&timeout_ms=2000"
        code, body = http("GET", url, timeout=30)
        assert code == 200, body
        left -= body["count"]
        return left == 0

    if n:
        wait_until(done, ARRIVES_WITHIN, f"{n} jobs consumed")


def consume_until(worker: Worker, lag_at_most: int) -> int:
    """`GET /consume` in batches until /status shows the lag at or below `lag_at_most`; returns
    how many jobs were consumed."""
    consumed = 0

    def low_enough() -> bool:
        nonlocal consumed
        lag = worker.status()["kafka_lag"]
        if lag is not None and lag <= lag_at_most:
            return True
        code, body = http("GET", f"{worker.url}/consume?batch_size=50&timeout_ms=2000", timeout=30)
        assert code == 200, body
        consumed += body["count"]
        return False

    wait_until(low_enough, ARRIVES_WITHIN, f"the lag at or below {lag_at_most}")
    return consumed


def test_consumer_lag_alert_reminders_then_one_recovery_below_ninety_percent(
    robots: ThreadedReceiver,
    simulator_factory: Callable[..., Simulator],
    worker_factory: Callable[..., Worker],
) -> None:
    """Jobs published, nobody consuming job_data, threshold 50, repeat_after 2 s: one alert,
    then reminders («已持续 …») while the lag holds; consumed down to 48 (below the threshold,
    above 90 % of it): still holding, no recovery; down to 45 or below: one recovery, and
    nothing after it (no reminder, no second recovery)."""
    sim = simulator_factory("--total", "300")
    worker = worker_factory(
        # A run every second (finding nothing new once caught up): time passing, observably.
        api=sim.api(),
        crawler={"interval": 1},
        alerts=alerts_section(robots, lag_threshold=50, repeat_after=2),
    ).start()
    worker.wait_ready(90)
    worker.wait_status(lambda s: s["current_offset"] == 300 and s["status"] == "idle")

    wait_for(robots, "consumer_lag", "repeat", n=2)
    lag = worker.wait_status(lambda s: (s["kafka_lag"] or 0) > 50)["kafka_lag"]
    # Below the threshold but above 90 % of it: still holding, no recovery.
    consume(worker, lag - 48)
    worker.wait_status(lambda s: s["kafka_lag"] == 48, timeout=30)
    runs = runs_of(worker)
    wait_until(lambda: runs_of(worker) >= runs + 3, 30, "three more runs")
    holding = counts(robots, "consumer_lag")
    for kind in KINDS:
        assert (holding[kind]["alert"], holding[kind]["recovery"]) == (1, 0), holding
    consumed = lag - 48 + consume_until(worker, 45)
    wait_for(robots, "consumer_lag", "recovery")
    # Nothing more over the next checks (a run a second: three runs span two checks at least).
    runs = runs_of(worker)
    wait_until(lambda: runs_of(worker) >= runs + 3, 30, "three more runs")
    settled = counts(robots, "consumer_lag")
    for kind in KINDS:
        assert settled[kind]["alert"] == 1 and settled[kind]["recovery"] == 1, settled
        assert settled[kind]["repeat"] >= 2, settled
        assert events(robots, kind)[0] == ("alert", "consumer_lag")
        assert events(robots, kind)[-1] == ("recovery", "consumer_lag")
    for name in ("task_error", "task_stalled", "broker_down"):
        assert_each_robot_got(robots, name)
    bodies = {kind: [g.body for g in robots.received("json") if g.body["kind"] == kind]
              for kind in ("alert", "repeat", "recovery")}  # fmt: skip
    [alert], [recovery], repeat = bodies["alert"], bodies["recovery"], bodies["repeat"][0]
    assert alert["details"]["threshold"] == 50 and alert["details"]["lag"] > 50
    assert "已持续" in repeat["title"] and repeat["started_at"] != repeat["at"]
    recovered_at = recovery["details"]["lag"]
    assert recovered_at <= 45 and recovery["details"]["cleared_by"] == "below_threshold"
    print(f"\nlag {lag} alerted; {consumed} jobs consumed; recovered at {recovered_at}")
    show(robots, "consumer_lag", "alert")


def test_broker_down_alert_sent_while_kafka_is_unreachable_then_recovery(
    robots: ThreadedReceiver,
    broker: Broker,
    simulator_factory: Callable[..., Simulator],
    worker_factory: Callable[..., Worker],
) -> None:
    """The broker stops answering (SIGSTOP keeps its connections open: the worst case). The
    webhooks are HTTP: the alert goes out while Kafka is unreachable. SIGCONT: one recovery."""
    sim = simulator_factory("--total", "300")
    worker = worker_factory(
        api=sim.api(),
        kafka={"bootstrap_servers": broker.bootstrap},
        crawler={"interval": 3600},
        alerts=alerts_section(robots),
    ).start()
    worker.wait_ready(90)
    worker.wait_status(lambda s: s["current_offset"] == 300 and s["status"] == "idle")

    broker.process.send_signal(signal.SIGSTOP)
    try:
        wait_for(robots, "broker_down", "alert")
        assert_each_robot_got(robots, "broker_down", alert=1)
        # Still down a while later: nothing new.
        wait_until(
            lambda: http("GET", f"{worker.url}/ready", timeout=15)[0] == 503, 30, "/ready 503"
        )
        assert_each_robot_got(robots, "broker_down", alert=1)
    finally:
        broker.process.send_signal(signal.SIGCONT)
    wait_until(lambda: http("GET", f"{worker.url}/ready")[0] == 200, 90, "/ready 200 again")
    wait_for(robots, "broker_down", "recovery")
    assert_each_robot_got(robots, "broker_down", alert=1, recovery=1)
    for name in ("task_error", "task_stalled", "consumer_lag"):
        assert_each_robot_got(robots, name)
    show(robots, "broker_down", "alert")
