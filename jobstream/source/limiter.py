"""One account's request rate, shared by every task and every page in flight.

The API allows about 20 requests a second per account (bazhuayu-api.md) and answers 429 above
it. Request starts are spaced evenly: each caller reserves the next free slot, in the order it
asked (so tasks that keep asking get turns in rotation), and sleeps until it. A 429 pauses
everyone: the slots reserved inside the pause are given up and taken again after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    """Spaces request starts `interval` seconds apart; `pause` holds every request back.

    `interval` is max(min_interval, 1 / per_second); 0 (per_second 0 and no min_interval)
    lets requests through at once, but a pause still holds them.
    """

    def __init__(
        self,
        per_second: float = 0.0,
        min_interval: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second < 0 or min_interval < 0:
            raise ValueError("per_second and min_interval must be >= 0")
        self.interval = max(min_interval, 1.0 / per_second if per_second > 0 else 0.0)
        self._clock = clock
        self._sleep = sleep
        self._next_slot = float("-inf")
        self._paused_until = float("-inf")
        self.pauses = 0

    @property
    def per_second(self) -> float:
        """The rate it allows (inf without a limit)."""
        return 1.0 / self.interval if self.interval > 0 else float("inf")

    async def acquire(self) -> None:
        """Return when this request may start."""
        while True:
            now = self._clock()
            slot = max(now, self._next_slot, self._paused_until)
            self._next_slot = slot + self.interval
            if slot > now:
                await self._sleep(slot - now)
            if self._paused_until <= slot:
                return
            # A 429 arrived while this request waited, and its slot lies inside the pause.

    def pause(self, seconds: float) -> None:
        """Hold every request for `seconds` from now (after a 429: the API's Retry-After or
        the backoff); a shorter pause than one in force changes nothing."""
        until = self._clock() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self._next_slot = max(self._next_slot, until)
            self.pauses += 1

    def paused_for(self) -> float:
        """Seconds left of the pause in force (0 when none)."""
        return max(0.0, self._paused_until - self._clock())
