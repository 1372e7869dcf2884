"""A request rate: an account's, or this worker's share of it, shared by every task and every
page in flight that use it.

The API allows about 20 requests a second per account (bazhuayu-api.md) and answers 429 above
it. Request starts are spaced evenly: each caller reserves the next free slot, in the order it
asked (so tasks that keep asking get turns in rotation), and sleeps until it. A busy event loop
that wakes several waiters late lets them catch up, but never more than the rate (rounded up)
within any one second. A 429 pauses everyone: the slots reserved inside the pause are given up
and taken again after it.

Several workers crawl one account, each with its share of the account's rate
(`jobstream.rates`): the share changes while requests wait. A change gives up every reserved
slot; the waiters reserve again at the new spacing, counted from the last start, so a slower
rate never lets a request start early and a faster one never leaves a request asleep until a
slot of the old spacing. A rate of 0 holds every request until a rate is set again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable


class RateLimiter:
    """Spaces request starts `interval` seconds apart; `pause` holds every request back.

    `interval` is max(min_interval, 1 / per_second); 0 (per_second 0 and no min_interval)
    lets requests through at once, but a pause still holds them. `set_rate` changes the rate
    while requests wait.
    """

    def __init__(
        self,
        per_second: float = 0.0,
        min_interval: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        check: Callable[[], None] | None = None,
    ) -> None:
        if per_second < 0 or min_interval < 0:
            raise ValueError("per_second and min_interval must be >= 0")
        self.min_interval = min_interval
        self.interval = _interval(per_second, min_interval)
        # The latest starts, as many as the rate allows within a second (no cap without one).
        self._starts: deque[float] = deque(maxlen=_cap(self.interval) or 1)
        # Rate 0 from `set_rate`: no request starts.
        self.held = False
        self._clock = clock
        self._sleep = sleep
        # Called before every slot is taken: whoever sets the rate brings it up to date.
        self._check = check
        self._next_slot = float("-inf")
        self._last_start = float("-inf")
        self._paused_until = float("-inf")
        # Set (and replaced) by every rate change: waiters reserve their slot again.
        self._changed = asyncio.Event()
        self._version = 0
        self.pauses = 0

    @property
    def per_second(self) -> float:
        """The rate it allows (0 while held, inf without a limit)."""
        if self.held:
            return 0.0
        return 1.0 / self.interval if self.interval > 0 else float("inf")

    def set_rate(self, per_second: float) -> None:
        """The rate from now on: 0 holds every request until a rate is set again; inf lets
        them through spaced by `min_interval` only."""
        if not per_second >= 0:  # NaN too
            raise ValueError(f"per_second must be >= 0, got {per_second}")
        held = per_second == 0
        interval = self.interval if held else _interval(per_second, self.min_interval)
        if held == self.held and interval == self.interval:
            return
        self.held, self.interval = held, interval
        self._starts = deque(self._starts, maxlen=_cap(interval) or 1)
        # The slots reserved at the old spacing are given up: the next start is one interval
        # of the new spacing after the last one.
        self._next_slot = self._last_start + interval
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def acquire(self) -> None:
        """Return when this request may start."""
        while True:
            if self._check is not None:
                self._check()
            if self.held:
                await self._changed.wait()
                continue
            now = self._clock()
            slot = max(now, self._next_slot, self._paused_until)
            self._next_slot = slot + self.interval
            version = self._version
            if slot > now:
                await self._until(slot - now)
                if self._check is not None:
                    self._check()
                if self._version != version:
                    continue  # the rate changed meanwhile: reserve again at the new spacing
            if self._paused_until > slot:
                continue  # a 429 arrived while this request waited: its slot is in the pause
            if not await self._room_within_a_second(version):
                continue  # the rate changed meanwhile
            now = self._clock()
            self._last_start = max(self._last_start, now)
            self._starts.append(now)
            return

    async def _room_within_a_second(self, version: int) -> bool:
        """Wait until fewer than the rate's starts (rounded up) fell within the last second;
        False if the rate changes meanwhile."""
        while True:
            cap = _cap(self.interval)
            if cap is None or len(self._starts) < cap:
                return True
            wait = self._starts[-cap] + 1.0 - self._clock()
            if wait <= 0:
                return True
            await self._until(wait)
            if self._version != version:
                return False

    async def _until(self, seconds: float) -> None:
        """Sleep `seconds`, or less if the rate changes meanwhile."""
        changed = asyncio.ensure_future(self._changed.wait())
        sleeping = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait({changed, sleeping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            sleeping.cancel()

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


def _cap(interval: float) -> int | None:
    """Starts allowed within one second at this spacing (None: no limit)."""
    return math.ceil(1.0 / interval - 1e-9) if interval > 0 else None


def _interval(per_second: float, min_interval: float) -> float:
    spacing = 1.0 / per_second if 0 < per_second < math.inf else 0.0
    return max(min_interval, spacing)
