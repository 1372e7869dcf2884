"""A consumer's fetch wait lengthens once its fetches bring nothing for a while, and is short
again with the first that brings data."""

from __future__ import annotations

import asyncio
from typing import Any

from jobstream.broker.transport import FetchWait


class Fetcher:
    """What FetchWait touches of aiokafka's Fetcher: the wait, and the fetch it observes."""

    def __init__(self) -> None:
        self._fetch_max_wait_ms = 50
        self.answers: list[bool] = []

    async def _proc_fetch_request(self, *args: Any) -> bool:
        return self.answers.pop(0)


def test_fetch_wait_quiet_fetches_lengthen_the_wait_after_the_grace_only() -> None:
    fetcher = Fetcher()
    wait = FetchWait(fetcher, 50, 500, idle_after=2.0)
    start = wait.last_data
    wait.observe(False, now=start + 1.0)
    assert fetcher._fetch_max_wait_ms == 50
    wait.observe(False, now=start + 2.5)
    assert fetcher._fetch_max_wait_ms == 500
    wait.observe(True, now=start + 3.0)
    assert fetcher._fetch_max_wait_ms == 50
    wait.observe(False, now=start + 4.0)
    assert fetcher._fetch_max_wait_ms == 50


def test_fetch_wait_observes_each_fetch_and_returns_what_it_returned() -> None:
    fetcher = Fetcher()
    wait = FetchWait(fetcher, 50, 500, idle_after=0.0)
    fetcher.answers = [False, True]
    assert asyncio.run(fetcher._proc_fetch_request("assignment", 1, "request")) is False
    assert fetcher._fetch_max_wait_ms == 500
    assert asyncio.run(fetcher._proc_fetch_request("assignment", 1, "request")) is True
    assert fetcher._fetch_max_wait_ms == 50
    assert wait.idle_ms == 500


def test_fetch_wait_never_shorter_when_idle_than_active() -> None:
    # A real broker's wait is already Kafka's default: quiet spells change nothing.
    fetcher = Fetcher()
    wait = FetchWait(fetcher, 500, 500, idle_after=0.0)
    wait.observe(False)
    assert fetcher._fetch_max_wait_ms == 500 == wait.idle_ms
