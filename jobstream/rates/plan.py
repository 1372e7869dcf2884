"""How much of an account's rate this worker may use: pure decisions from what it knows.

Every worker announces, on a small compacted topic, how many of each account's tasks it wants
to crawl now: its *claim* (the tasks it owns that are running or due within `LEAD`). Its share
of an account's rate R is R × n / d:

- n, the claim it uses. A fall is used at once. A raise is announced first and used `SETTLE`
  seconds after the broker acknowledged the announcement (alone in its group, at once).
- d, the most every worker together uses: n plus the latest claim of every other member of the
  group. That holds while this worker's view of the topic is current: it reads back its own
  announcements, and when the latest one it has read was sent more than `FRESH` seconds ago it
  cannot know of a raise, and counts for the others the most they could use: the account's
  enabled tasks it does not own itself.

Why all shares together never exceed R: the sum of n_w / d_w over the workers w is at most 1 as
long as every d_w is at least the sum of every worker's n. A worker raises its n `SETTLE`
seconds after its claim was acknowledged; a worker with a current view has read everything
appended before its own announcement of `FRESH` < `SETTLE` seconds ago, so it counts the raise
before the raise is used. A worker without a current view counts, for the others, the tasks
they own, which bound their claims. A worker that owns nothing (a rebalance is under way)
claims nothing and uses nothing. What this leaves open is Kafka's own zombie: a worker cut off
from the group that still believes it owns its tasks.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Seconds between two announcements of this worker's claims (a change is announced at once).
HEARTBEAT = 0.5
# Longest since this worker's latest announcement it has read back, for its view of the other
# workers' claims to count as current: a heartbeat, the broker's fetch wait, and room for a
# busy event loop.
FRESH = 1.0
# Seconds after the broker acknowledged a raised claim before this worker uses it: longer than
# FRESH, so that every worker with a current view has read the raise by then.
SETTLE = 1.5
# A task due to run within this many seconds is claimed already, so that its share is there
# when it starts (the crawl's own interval between runs does not wait for SETTLE).
LEAD = SETTLE + HEARTBEAT
# Announcements kept before those never acknowledged are merged (see SharePlan._compact).
MAX_PENDING = 32


@dataclass(frozen=True)
class Account:
    """What a worker knows of an account: its rate (calls per second; inf: no limit) and how
    many enabled tasks it has in all."""

    name: str
    per_second: float
    tasks: int


@dataclass
class Announcement:
    """Claims this worker sent, by account; when the broker acknowledged them (None: not yet,
    or never)."""

    claims: dict[str, int]
    acked_at: float | None = None


@dataclass
class SharePlan:
    """This worker's shares, decided from its own claims and the other workers' (the inputs
    are set by the service that reads and writes the claims topic)."""

    accounts: Mapping[str, Account]
    me: str
    # The workers the partition assignment names (this one among them).
    members: frozenset[str] = frozenset()
    # Per account: the enabled tasks this worker owns, and those it wants to crawl now.
    owned: dict[str, int] = field(default_factory=dict)
    wanted: dict[str, int] = field(default_factory=dict)
    # The latest claims read for every other worker.
    claims: dict[str, dict[str, int]] = field(default_factory=dict)
    # When the latest announcement of this worker read back from the topic was sent.
    current_as_of: float = -math.inf
    # This worker's announcements, oldest first, from the newest settled one on.
    sent: deque[Announcement] = field(default_factory=deque)

    @property
    def alone(self) -> bool:
        return self.members <= {self.me}

    def is_current(self, now: float) -> bool:
        return now - self.current_as_of <= FRESH

    def announce(self) -> Announcement:
        """The claims to send now (recorded as sent, not yet acknowledged)."""
        announcement = Announcement(dict(self.wanted))
        self._compact()
        self.sent.append(announcement)
        return announcement

    def _compact(self) -> None:
        """While Kafka acknowledges nothing, announcements pile up (two a second); only the
        least of their claims matters (`settled`), so those never acknowledged are merged into
        one that claims the least of each."""
        if len(self.sent) < MAX_PENDING:
            return
        kept: deque[Announcement] = deque()
        for announcement in self.sent:
            last = kept[-1] if kept else None
            if last is not None and last.acked_at is None and announcement.acked_at is None:
                names = last.claims.keys() | announcement.claims.keys()
                last.claims = {
                    n: min(last.claims.get(n, 0), announcement.claims.get(n, 0)) for n in names
                }
            else:
                kept.append(announcement)
        self.sent = kept

    def read(self, worker: str, claims: Mapping[str, int] | None) -> None:
        """Another worker's latest claims (None: it has gone, with nothing claimed)."""
        if claims is None:
            self.claims.pop(worker, None)
        else:
            self.claims[worker] = dict(claims)

    def read_back(self, sent_at: float) -> None:
        """This worker's own announcement, sent at `sent_at`, was read back from the topic:
        everything appended before it has been read too."""
        self.current_as_of = max(self.current_as_of, sent_at)

    def settled(self, account: str, now: float) -> int:
        """The claim any worker with a current view counts for this one, at the least: the
        newest announcement acknowledged `SETTLE` seconds ago, and every one sent since (one
        not acknowledged may have been appended all the same)."""
        start = None
        for index, announcement in enumerate(self.sent):
            if announcement.acked_at is not None and announcement.acked_at <= now - SETTLE:
                start = index
        if start is None:
            return 0
        for _ in range(start):  # those before the settled one no longer bound anything
            self.sent.popleft()
        return min(announcement.claims.get(account, 0) for announcement in self.sent)

    def used(self, account: str, now: float) -> int:
        """n: the claim this worker uses now."""
        wanted = self.wanted.get(account, 0)
        if self.alone:
            return wanted
        return min(wanted, self.settled(account, now))

    def others(self, account: str, now: float) -> int:
        """d - n: the most the other workers use together now, as far as this one can tell."""
        if self.alone:
            return 0
        if self.is_current(now):
            return sum(
                self.claims.get(worker, {}).get(account, 0)
                for worker in self.members
                if worker != self.me
            )
        return max(0, self.accounts[account].tasks - self.owned.get(account, 0))

    def share(self, account: str, now: float) -> float:
        """The calls per second this worker may make for the account now (0: none)."""
        rate = self.accounts[account].per_second
        used = self.used(account, now)
        if used <= 0:
            return 0.0
        if math.isinf(rate):
            return rate
        return rate * used / (used + self.others(account, now))

    def shares(self, now: float) -> dict[str, float]:
        return {name: self.share(name, now) for name in self.accounts}

    def next_change(self, now: float) -> float:
        """When a share may change by time alone (a raise settles, the view goes stale)."""
        times = [
            announcement.acked_at + SETTLE
            for announcement in self.sent
            if announcement.acked_at is not None and announcement.acked_at + SETTLE > now
        ]
        if self.is_current(now):
            times.append(self.current_as_of + FRESH)
        return min(times, default=math.inf)


def accounts_of(rates: Mapping[str, float], task_accounts: Iterable[str]) -> dict[str, Account]:
    """Each account's rate and its number of enabled tasks (`task_accounts`: the account of
    each enabled task)."""
    counts: dict[str, int] = dict.fromkeys(rates, 0)
    for name in task_accounts:
        counts[name] += 1
    return {name: Account(name, rate, counts[name]) for name, rate in rates.items()}
