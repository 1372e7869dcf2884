"""What the rate shares tell the log when announcing or reading the claims fails: nothing
while Kafka is unreachable (the outage has its own lines), one WARNING when the failure goes on
for `UNDECIDED` seconds while Kafka answers, one INFO when that told failure ends."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from jobstream import config
from jobstream.logs import UNDECIDED
from jobstream.rates import shares as shares_module
from jobstream.rates.shares import RateShares

ANNOUNCING = "announcing the claims"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(shares_module.time, "monotonic", clock)
    return clock


def made(up: bool | None) -> tuple[RateShares, Any]:
    story = SimpleNamespace(up=up)
    shares = RateShares(config.from_mapping({}), worker=None, wanted=dict, story=story)  # type: ignore[arg-type]
    return shares, story


def told(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]


async def test_rate_shares_log_failure_during_outage_is_the_outages(clock, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="jobstream.rates.shares")
    shares, _ = made(up=False)
    for _ in range(40):  # 20 s of heartbeats
        shares._failed(ANNOUNCING, TimeoutError())
        clock.now += 0.5
    shares._recovered(ANNOUNCING)
    assert told(caplog) == []


async def test_rate_shares_log_failure_while_kafka_answers_warns_once_then_info(
    clock, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="jobstream.rates.shares")
    shares, _ = made(up=True)
    shares._failed(ANNOUNCING, TimeoutError())
    clock.now += UNDECIDED - 0.5
    shares._failed(ANNOUNCING, TimeoutError())
    assert told(caplog) == []  # a short failure is not news
    for _ in range(10):
        clock.now += 0.5
        shares._failed(ANNOUNCING, TimeoutError())
    shares._recovered(ANNOUNCING)
    [(level, warning), (info_level, info)] = told(caplog)
    assert level == logging.WARNING and warning.startswith(
        "rate shares: announcing the claims failed for 10s while Kafka answers"
    )
    assert (info_level, info) == (logging.INFO, "rate shares: announcing the claims works again")


async def test_rate_shares_log_short_failure_recovers_silently(clock, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="jobstream.rates.shares")
    shares, _ = made(up=True)
    shares._failed(ANNOUNCING, TimeoutError())
    clock.now += 2
    shares._recovered(ANNOUNCING)
    assert told(caplog) == []
