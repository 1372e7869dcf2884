"""AlertService end to end: a fake worker whose state changes over time, the real service loop,
and the four robot types on loopback. Each condition reaches every webhook once, is not
repeated while it holds, and is followed by one recovery; nothing a webhook or the snapshot does
stops the service. Waits poll for a condition with a deadline; time itself is never asserted.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import pytest

from jobstream.alerts import AlertService, AlertSettings, Snapshot, TaskSnapshot, Webhook
from tests.robots import (
    BODIES,
    RobotReceiver,
    assert_nothing_hidden_in,
    receiver,
)

__all__ = ["receiver"]  # the fixture, shared

DEADLINE = 10.0
HEALTHY = Snapshot(tasks=(TaskSnapshot("t1", "idle", 100, 100),), lag=0, broker_up=True)


@dataclass
class FakeWorker:
    """What the lead's real snapshot will report, set by the test; counts the looks."""

    snapshot: Snapshot = HEALTHY
    failure: Exception | None = None
    looks: int = 0

    async def look(self) -> Snapshot:
        self.looks += 1
        if self.failure is not None:
            raise self.failure
        return self.snapshot


@dataclass
class Clock:
    """Wall time plus what the test skipped ahead (signatures stay within the robots' hour)."""

    skipped: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped


@dataclass
class Running:
    service: AlertService
    worker: FakeWorker
    clock: Clock
    receiver: RobotReceiver
    seen: dict[str, int] = field(default_factory=dict)

    async def checks(self, n: int) -> None:
        """Wait until `n` more checks have completed."""
        target = self.service.checks + n
        await wait_for(lambda: self.service.checks >= target, f"{n} more checks")

    async def message(self, text: str) -> None:
        """Wait until every webhook has accepted one more message, containing `text`."""

        def arrived() -> bool:
            return all(
                len(self.receiver.accepted(kind)) > self.seen.get(kind, 0) for kind in BODIES
            )

        await wait_for(arrived, f"a message with {text!r} at every webhook")
        for kind in BODIES:
            got = self.receiver.accepted(kind)
            assert len(got) == self.seen.get(kind, 0) + 1, f"{kind}: more than one message"
            assert text in got[-1].text, f"{kind}: {got[-1].text!r}"
            self.seen[kind] = len(got)

    def quiet(self) -> None:
        """Nothing beyond what `message` already counted."""
        for kind in BODIES:
            assert len(self.receiver.received[kind]) == self.seen.get(kind, 0), kind


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def settings(webhooks: tuple[Webhook, ...], **overrides: object) -> AlertSettings:
    values: dict[str, object] = {
        "webhooks": webhooks,
        "check_interval": 0.02,  # direct construction: the config's minimum of 1 s is for YAML
        "no_progress_minutes": 1.0,
        "lag_threshold": 1000,
        "repeat_after": 0.0,
        "max_per_minute": 30,
        "timeout": 2.0,
        "attempts": 2,
    }
    values.update(overrides)
    return AlertSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO, logger="jobstream.alerts")
    yield
    assert_nothing_hidden_in(caplog.text)


@pytest.fixture
async def running(receiver: RobotReceiver) -> AsyncIterator[Running]:
    worker, clock = FakeWorker(), Clock()
    service = AlertService(settings(receiver.webhooks()), worker.look, clock=clock, backoff=0.01)
    await service.start()
    yield Running(service, worker, clock, receiver)
    await service.stop()


# -- each condition: once to every robot, silent while it holds, one recovery ---------------


async def test_service_task_error_fires_once_then_recovers(running: Running) -> None:
    await running.checks(2)
    running.quiet()

    running.worker.snapshot = Snapshot(
        tasks=(TaskSnapshot("t1", "error", 40, 100, "API 503 after 3 attempts", 1),),
        lag=0,
        broker_up=True,
    )
    await running.message("【jobstream 告警】任务 t1 采集失败")
    await running.checks(5)
    running.quiet()

    running.worker.snapshot = Snapshot(
        tasks=(TaskSnapshot("t1", "idle", 100, 100),), lag=0, broker_up=True
    )
    await running.message("【jobstream 恢复】任务 t1 采集已恢复")
    await running.checks(5)
    running.quiet()


async def test_service_task_without_progress_fires_once_then_recovers(running: Running) -> None:
    stuck = Snapshot(tasks=(TaskSnapshot("t1", "running", 40, 100),), lag=0, broker_up=True)
    running.worker.snapshot = stuck
    await running.checks(3)
    running.quiet()  # rows left, but not for a minute yet

    running.clock.skipped = 61.0
    await running.message("【jobstream 告警】任务 t1 已 1 分钟没有进展")
    assert "还有 60 行未采集" in running.receiver.accepted("json")[-1].text
    await running.checks(5)
    running.quiet()

    running.worker.snapshot = HEALTHY  # offset 100 of 100
    await running.message("【jobstream 恢复】任务 t1 已采集完数据源的全部数据")
    await running.checks(5)
    running.quiet()


async def test_service_consumer_lag_fires_once_then_recovers(running: Running) -> None:
    running.worker.snapshot = Snapshot(tasks=HEALTHY.tasks, lag=250_000, broker_up=True)
    await running.message("【jobstream 告警】Kafka 消费积压 250000 条")
    running.worker.snapshot = Snapshot(tasks=HEALTHY.tasks, lag=300_000, broker_up=True)
    await running.checks(5)
    running.quiet()

    running.worker.snapshot = Snapshot(tasks=HEALTHY.tasks, lag=0, broker_up=True)
    await running.message("【jobstream 恢复】Kafka 消费积压已回落")
    await running.checks(5)
    running.quiet()


async def test_service_broker_unreachable_fires_once_then_recovers(running: Running) -> None:
    running.worker.snapshot = Snapshot(tasks=HEALTHY.tasks, lag=None, broker_up=False)
    await running.message("【jobstream 告警】Kafka 无法连接")
    await running.checks(5)
    running.quiet()

    running.worker.snapshot = HEALTHY
    await running.message("【jobstream 恢复】Kafka 已恢复连接")
    await running.checks(5)
    running.quiet()


async def test_service_reminds_while_the_condition_holds(receiver: RobotReceiver) -> None:
    worker, clock = FakeWorker(), Clock()
    worker.snapshot = Snapshot(tasks=HEALTHY.tasks, lag=None, broker_up=False)
    service = AlertService(
        settings(receiver.webhooks(), repeat_after=120.0), worker.look, clock=clock, backoff=0.01
    )
    run = Running(service, worker, clock, receiver)
    await service.start()
    try:
        await run.message("【jobstream 告警】Kafka 无法连接")
        clock.skipped = 121.0
        await run.message("【jobstream 告警】Kafka 无法连接（已持续 2 分钟）")
        await run.checks(5)
        run.quiet()
    finally:
        await service.stop()


# -- nothing stops the service ---------------------------------------------------------------


async def test_service_failing_snapshot_skips_the_check_and_goes_on(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    running.worker.failure = RuntimeError("progress store not ready")
    looks = running.worker.looks
    await wait_for(lambda: running.worker.looks >= looks + 3, "three failed looks")
    assert "could not look at the worker" in caplog.text

    running.worker.failure = None
    running.worker.snapshot = Snapshot(tasks=HEALTHY.tasks, lag=None, broker_up=False)
    await running.message("【jobstream 告警】Kafka 无法连接")


async def test_service_unreachable_and_refusing_webhooks_never_stop_it(
    receiver: RobotReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    worker = FakeWorker(Snapshot(tasks=HEALTHY.tasks, lag=None, broker_up=False))
    webhooks = (
        Webhook(
            type="wecom", url=f"http://127.0.0.1:{closed}/cgi-bin/webhook/send?key=WECOM-KEY-7f3a"
        ),
        receiver.webhook("dingtalk", secret="SECwrong"),  # refused: bad signature
        receiver.webhook("json"),
    )
    service = AlertService(settings(webhooks, timeout=0.2), worker.look, backoff=0.01)
    await service.start()
    try:
        await wait_for(lambda: len(receiver.accepted("json")) == 1, "the json alert")
        worker.snapshot = HEALTHY
        await wait_for(lambda: len(receiver.accepted("json")) == 2, "the json recovery")
        checks = service.checks
        await wait_for(lambda: service.checks >= checks + 5, "five more checks")
        assert not service.should_stop
    finally:
        await service.stop()

    assert "alert to wecom http://127.0.0.1:" in caplog.text
    assert "errcode=310000 sign not match" in caplog.text
    assert len(receiver.received["dingtalk"]) == 2  # alert and recovery, each refused once


async def test_service_without_webhooks_never_looks(receiver: RobotReceiver) -> None:
    idle_worker, busy_worker = FakeWorker(), FakeWorker()
    idle = AlertService(settings(()), idle_worker.look)
    busy = AlertService(settings(receiver.webhooks()), busy_worker.look)  # the same interval
    await idle.start()
    await busy.start()
    try:
        await wait_for(lambda: busy.checks >= 3, "three checks of the configured twin")
    finally:
        await busy.stop()
        await idle.stop()

    assert idle_worker.looks == 0 and idle.checks == 0
