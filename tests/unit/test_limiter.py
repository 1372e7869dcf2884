"""The shared API rate limiter, on a fake clock: spacing, fairness, the 429 pause."""

from __future__ import annotations

import asyncio
import heapq
from typing import Any

import pytest

from jobstream.source import RateLimiter


class FakeTime:
    """A clock that jumps to the earliest sleeper's wake-up time once every task waits."""

    def __init__(self) -> None:
        self.now = 100.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), id(future), future))
        await future

    async def run(self, *coroutines: Any) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in coroutines]
        while not all(t.done() for t in tasks):
            for _ in range(10):
                await asyncio.sleep(0)
            if self._sleepers:
                wake, _, future = heapq.heappop(self._sleepers)
                self.now = max(self.now, wake)
                if not future.done():  # a sleep cut short by a rate change is cancelled
                    future.set_result(None)
        return [t.result() for t in tasks]


def limiter(per_second: float = 0.0, min_interval: float = 0.0) -> tuple[RateLimiter, FakeTime]:
    fake = FakeTime()
    return RateLimiter(per_second, min_interval, clock=fake.clock, sleep=fake.sleep), fake


async def starts(limiter: RateLimiter, fake: FakeTime, n: int) -> list[float]:
    times = []
    for _ in range(n):
        await limiter.acquire()
        times.append(round(fake.now - 100.0, 6))
    return times


async def test_limiter_spaces_request_starts_by_the_rate():
    rl, fake = limiter(per_second=20)
    assert await fake.run(starts(rl, fake, 4)) == [[0.0, 0.05, 0.1, 0.15]]


async def test_limiter_min_interval_wins_when_it_is_longer():
    rl, _ = limiter(per_second=20, min_interval=0.2)
    assert rl.interval == 0.2 and rl.per_second == 5


async def test_limiter_without_limit_lets_every_request_through_at_once():
    rl, fake = limiter()
    assert await fake.run(starts(rl, fake, 3)) == [[0.0, 0.0, 0.0]]
    assert rl.per_second == float("inf")


async def test_limiter_concurrent_callers_share_one_rate_in_turn():
    rl, fake = limiter(per_second=10)
    order: list[tuple[str, float]] = []

    async def task(name: str) -> None:
        for _ in range(3):
            await rl.acquire()
            order.append((name, round(fake.now - 100.0, 6)))

    await fake.run(task("a"), task("b"), task("c"))
    times = [t for _, t in order]
    assert times == sorted(times) and len(set(times)) == 9  # one start every 0.1 s
    assert times[-1] == pytest.approx(0.8)
    # Fair: turns rotate; all three start within the first four slots (the first is immediate).
    assert sorted(name for name, _ in order) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert {name for name, _ in order[:4]} == {"a", "b", "c"}


async def test_limiter_pause_holds_every_request_then_resumes_spaced():
    rl, fake = limiter(per_second=10)
    await fake.run(rl.acquire())
    rl.pause(1.0)  # a 429 with Retry-After: 1
    assert rl.paused_for() == pytest.approx(1.0)
    assert await fake.run(starts(rl, fake, 2)) == [[1.0, 1.1]]


async def test_limiter_pause_during_a_wait_moves_the_waiting_request_after_it():
    rl, fake = limiter(per_second=1)
    await fake.run(rl.acquire())  # t=0; the next slot is t=1

    async def paused_at_half_a_second() -> None:
        await fake.sleep(0.5)
        rl.pause(5.0)  # a 429 at t=0.5: everything waits until t=5.5

    await fake.run(rl.acquire(), paused_at_half_a_second())
    assert fake.now - 100.0 == pytest.approx(5.5)


async def test_limiter_shorter_pause_does_not_shorten_a_longer_one():
    rl, _ = limiter(per_second=10)
    rl.pause(3.0)
    rl.pause(1.0)
    assert rl.paused_for() == pytest.approx(3.0) and rl.pauses == 1


def test_limiter_refuses_negative_rates():
    with pytest.raises(ValueError):
        RateLimiter(-1)


async def test_limiter_rate_zero_holds_every_request_until_a_rate_is_set():
    rl, fake = limiter(per_second=10)
    rl.set_rate(0)
    assert rl.held and rl.per_second == 0
    started: list[float] = []

    async def request() -> None:
        await rl.acquire()
        started.append(round(fake.now - 100.0, 6))

    async def released_at_two_seconds() -> None:
        await fake.sleep(2.0)
        assert started == []
        rl.set_rate(5)

    await fake.run(request(), request(), released_at_two_seconds())
    assert started == [2.0, 2.2]


async def test_limiter_slower_rate_respaces_requests_already_waiting():
    rl, fake = limiter(per_second=10)
    times: list[float] = []

    async def request() -> None:
        await rl.acquire()
        times.append(round(fake.now - 100.0, 6))

    async def slower_after_the_first() -> None:
        await fake.sleep(0.01)
        rl.set_rate(2)  # the share halves... five times over: 0.5 s apart from now on

    await fake.run(*(request() for _ in range(4)), slower_after_the_first())
    # The first started at 0 under the old rate; the others keep the new spacing from it,
    # none at the 0.1 s slots they had reserved.
    assert times == [0.0, 0.5, 1.0, 1.5]


async def test_limiter_faster_rate_wakes_requests_asleep_until_old_slots():
    rl, fake = limiter(per_second=1)
    times: list[float] = []

    async def request() -> None:
        await rl.acquire()
        times.append(round(fake.now - 100.0, 6))

    async def faster_at_a_tenth() -> None:
        await fake.sleep(0.1)
        rl.set_rate(10)

    await fake.run(*(request() for _ in range(4)), faster_at_a_tenth())
    # Reserved at 0, 1, 2, 3 s; after the change at 0.1 s the rest start 0.1 s apart.
    assert times == [0.0, 0.1, 0.2, 0.3]


async def test_limiter_rate_unchanged_changes_nothing():
    rl, _ = limiter(per_second=20)
    rl.set_rate(20)
    assert rl.interval == 0.05 and not rl.held
    with pytest.raises(ValueError):
        rl.set_rate(float("nan"))


async def test_limiter_waiters_woken_late_catch_up_but_never_past_the_rate_in_a_second():
    rl, fake = limiter(per_second=10)
    times: list[float] = []

    async def request() -> None:
        await rl.acquire()
        times.append(round(fake.now - 100.0, 6))

    waiting = [asyncio.ensure_future(request()) for _ in range(15)]
    for _ in range(5):
        await asyncio.sleep(0)  # the first starts; the others reserve 0.1 .. 1.4 s and sleep
    fake.now += 2.0  # the event loop was busy for two seconds: every slot has passed
    await fake.run(*waiting)
    # Ten catch up at once (the rate within a second), the rest one second after the first
    # of those.
    assert times == [0.0] + [2.0] * 10 + [3.0] * 4
