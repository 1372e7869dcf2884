"""Faults the simulator injects on request: latency, rate limiting, failed and stalled answers."""

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

Endpoint = Literal["token", "data", "any"]
Body = Literal["json", "html", "truncated"]
ENDPOINTS = ("token", "data", "any")
BODIES = ("json", "html", "truncated")


@dataclass(frozen=True)
class Failure:
    """One forced answer. `body` None: an HTML gateway page for 502-504, a JSON error otherwise."""

    status: int
    endpoint: Endpoint = "data"
    body: Body | None = None

    @property
    def body_kind(self) -> Body:
        if self.body is not None:
            return self.body
        return "html" if self.status in (502, 503, 504) else "json"


class LeakyBucket:
    """Admits `rate` requests a second on average, with room for `rate * burst_seconds` at once."""

    def __init__(
        self, rate: float, burst_seconds: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate limit must be > 0, got {rate}")
        self.rate = rate
        self.burst_seconds = burst_seconds
        self.capacity = max(1.0, rate * burst_seconds)
        self._monotonic = monotonic
        self._level = 0.0
        self._last = monotonic()

    def allow(self) -> bool:
        now = self._monotonic()
        self._level = max(0.0, self._level - (now - self._last) * self.rate)
        self._last = now
        if self._level + 1 > self.capacity:
            return False
        self._level += 1
        return True


def _matches(endpoint: str, wanted: str) -> bool:
    return wanted == "any" or wanted == endpoint


class Faults:
    """Mutable at run time through the state object or `POST /_sim/faults`."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.latency_ms = 0.0
        self.latency_jitter_ms = 0.0
        # The default account's bucket, and each other account's by user name.
        self.bucket: LeakyBucket | None = None
        self.buckets: dict[str, LeakyBucket | None] = {}
        self.fail_rate = 0.0
        self.fail_rate_status = 503
        self._failures: deque[Failure] = deque()
        self._stalls: deque[tuple[str, float]] = deque()

    def set_rate_limit(
        self, rate: float | None, burst_seconds: float = 5.0, account: str | None = None
    ) -> None:
        """The rate limit of `account` (a user name), or of the default account when None."""
        bucket = None if rate is None else LeakyBucket(rate, burst_seconds)
        if account is None:
            self.bucket = bucket
        else:
            self.buckets[account] = bucket

    def fail_next(
        self, n: int, status: int = 503, endpoint: Endpoint = "data", body: Body | None = None
    ) -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {ENDPOINTS}, got {endpoint!r}")
        if body is not None and body not in BODIES:
            raise ValueError(f"body must be one of {BODIES}, got {body!r}")
        self._failures.extend(Failure(status, endpoint, body) for _ in range(n))

    def stall_next(self, n: int, seconds: float, endpoint: Endpoint = "data") -> None:
        """Hold the next n answers for `seconds` (longer than the client's timeout: a timeout)."""
        self._stalls.extend((endpoint, seconds) for _ in range(n))

    def clear(self) -> None:
        self.latency_ms = self.latency_jitter_ms = self.fail_rate = 0.0
        self.bucket = None
        self.buckets = dict.fromkeys(self.buckets)
        self._failures.clear()
        self._stalls.clear()

    def delay(self, endpoint: str) -> float:
        """Seconds to wait before answering this request."""
        seconds = (self.latency_ms + self._rng.uniform(0, self.latency_jitter_ms)) / 1000
        for i, (wanted, stall) in enumerate(self._stalls):
            if _matches(endpoint, wanted):
                del self._stalls[i]
                return seconds + stall
        return seconds

    def rate_limited(self, account: str | None = None) -> bool:
        """Whether `account`'s bucket refuses this request (an account it does not know, or
        None, is the default one's)."""
        bucket = self.buckets[account] if account in self.buckets else self.bucket
        return bucket is not None and not bucket.allow()

    def take_failure(self, endpoint: str) -> Failure | None:
        for i, failure in enumerate(self._failures):
            if _matches(endpoint, failure.endpoint):
                del self._failures[i]
                return failure
        if self.fail_rate and self._rng.random() < self.fail_rate:
            return Failure(self.fail_rate_status, "any")
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "latency_jitter_ms": self.latency_jitter_ms,
            "rate_limit": None if self.bucket is None else self.bucket.rate,
            "rate_burst_seconds": None if self.bucket is None else self.bucket.burst_seconds,
            "account_rate_limits": {
                name: None if bucket is None else bucket.rate
                for name, bucket in self.buckets.items()
            },
            "fail_rate": self.fail_rate,
            "fail_rate_status": self.fail_rate_status,
            "pending_failures": [asdict(f) for f in self._failures],
            "pending_stalls": len(self._stalls),
        }
