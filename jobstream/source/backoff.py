"""How long to wait before trying again: exponential backoff with full jitter, or Retry-After."""

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A Retry-After beyond this is treated as this: the crawl would rather ask again than stall.
RETRY_AFTER_CEILING = 300.0


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """A random wait in [0, min(cap, base * 2**(attempt-1))] for the attempt-th retry (from 1)."""
    return rng.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(0.0, seconds), RETRY_AFTER_CEILING)
