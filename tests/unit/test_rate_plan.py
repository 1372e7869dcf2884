"""The share rule (`jobstream.rates.plan`): each worker's share of an account's rate from the
claims it knows, and the bound it keeps to: every worker's share together never exceeds the
account's rate, however the workers' views lag behind one another."""

from __future__ import annotations

import math
import random

import pytest

from jobstream.rates.plan import FRESH, SETTLE, Account, SharePlan, accounts_of

RATE = 20.0
A, B, C = "http://a:1", "http://b:2", "http://c:3"


def plan(me: str, tasks: int = 4, members: frozenset[str] = frozenset({A, B})) -> SharePlan:
    return SharePlan({"default": Account("default", RATE, tasks)}, me, members=members)


def settle(p: SharePlan, claims: int, at: float) -> None:
    """`p` announced `claims`, acknowledged at `at`."""
    p.wanted = {"default": claims}
    p.announce().acked_at = at


def test_rate_plan_alone_uses_the_whole_rate_at_once() -> None:
    p = plan(A, members=frozenset({A}))
    p.wanted = {"default": 1}
    assert p.share("default", now=0.0) == RATE


def test_rate_plan_owning_nothing_asks_for_nothing() -> None:
    p = plan(A)
    assert p.share("default", now=100.0) == 0.0
    alone = plan(A, members=frozenset())  # before the first assignment
    assert alone.share("default", now=100.0) == 0.0


def test_rate_plan_raise_is_used_only_once_settled() -> None:
    p = plan(A)
    p.read_back(0.0)
    settle(p, 2, at=0.0)
    assert p.share("default", now=SETTLE - 0.01) == 0.0  # the others may not have read it yet
    p.read_back(SETTLE - 0.2)
    assert p.share("default", now=SETTLE) == RATE  # B claims nothing
    p.read(B, {"default": 2})
    assert p.share("default", now=SETTLE) == RATE / 2


def test_rate_plan_fall_is_used_at_once_and_a_new_raise_waits_again() -> None:
    p = plan(A)
    settle(p, 3, at=0.0)
    p.read_back(10.0)
    p.read(B, {"default": 1})
    assert p.share("default", now=10.0) == RATE * 3 / 4
    settle(p, 1, at=10.1)
    assert p.share("default", now=10.2) == RATE * 1 / 2
    settle(p, 3, at=10.3)  # up again: still 1 until this announcement settles
    assert p.share("default", now=10.4) == RATE * 1 / 2
    p.read_back(10.3 + SETTLE - 0.1)
    assert p.share("default", now=10.3 + SETTLE) == RATE * 3 / 4


def test_rate_plan_stale_view_counts_every_task_the_others_own() -> None:
    p = plan(A, tasks=10)
    settle(p, 2, at=0.0)
    p.owned = {"default": 3}
    p.read_back(5.0)
    p.read(B, {"default": 1})
    assert p.share("default", now=5.0) == RATE * 2 / 3
    stale = 5.0 + FRESH + 0.01
    assert not p.is_current(stale)
    assert p.share("default", now=stale) == RATE * 2 / (2 + 7)
    assert p.next_change(5.0) == pytest.approx(5.0 + FRESH)


def test_rate_plan_only_members_count_and_gone_workers_drop_out() -> None:
    p = plan(A)
    settle(p, 1, at=0.0)
    p.read_back(5.0)
    p.read(B, {"default": 1})
    p.read(C, {"default": 5})  # left the group: its claims are an old process's
    assert p.share("default", now=5.0) == RATE / 2
    p.read(B, None)
    assert p.share("default", now=5.0) == RATE


def test_rate_plan_unlimited_account_is_unlimited_while_claimed() -> None:
    p = SharePlan({"x": Account("x", math.inf, 2)}, A, members=frozenset({A}))
    assert p.share("x", now=0.0) == 0.0
    p.wanted = {"x": 1}
    assert p.share("x", now=0.0) == math.inf


def test_rate_plan_accounts_count_their_enabled_tasks() -> None:
    accounts = accounts_of({"default": 20.0, "b": 10.0}, ["default", "b", "b"])
    assert accounts == {"default": Account("default", 20.0, 1), "b": Account("b", 10.0, 2)}


class Log:
    """The claims topic: every announcement appended in order, with when."""

    def __init__(self) -> None:
        self.entries: list[tuple[float, str, dict[str, int]]] = []

    def append(self, at: float, worker: str, claims: dict[str, int]) -> None:
        self.entries.append((at, worker, claims))


def test_rate_plan_shares_never_add_up_to_more_than_the_rate_whatever_the_lag() -> None:
    """Three workers whose demand changes at random, each announcing every half second and
    reading the topic behind by its own delay, which changes every two seconds (at times
    longer than FRESH): at every step, the shares each worker applies add up to at most the
    rate."""
    rng = random.Random(7)
    tasks = {A: 3, B: 2, C: 1}
    members = frozenset(tasks)
    plans = {w: plan(w, tasks=sum(tasks.values()), members=members) for w in tasks}
    for w, p in plans.items():
        p.owned = {"default": tasks[w]}
    log = Log()
    read_upto = dict.fromkeys(tasks, 0)
    lags = dict.fromkeys(tasks, 0.05)
    sent_at: dict[tuple[str, int], float] = {}
    worst = 0.0
    now = 0.0
    for step in range(4000):
        now = step * 0.05
        for w, p in plans.items():
            if rng.random() < 0.05:
                p.wanted = {"default": rng.randint(0, tasks[w])}
            if step % 10 == tasks[w] or rng.random() < 0.02:  # a heartbeat, or a change
                announcement = p.announce()
                log.append(now, w, announcement.claims)
                sent_at[(w, len(log.entries) - 1)] = now
                # Acknowledged after a random delay (or never).
                if rng.random() < 0.95:
                    announcement.acked_at = now + rng.uniform(0.0, 0.3)
            # Each reader is behind the log by its own delay, changing now and then.
            if step % 40 == 0:
                lags[w] = rng.choice([0.05, 0.1, 0.3, 0.6, 0.9, 1.2, 2.0])
            lag = lags[w]
            while read_upto[w] < len(log.entries) and log.entries[read_upto[w]][0] <= now - lag:
                _, worker, claims = log.entries[read_upto[w]]
                if worker == w:
                    p.read_back(sent_at[(w, read_upto[w])])
                else:
                    p.read(worker, claims)
                read_upto[w] += 1
        total = sum(p.share("default", now) for p in plans.values())
        worst = max(worst, total)
        assert total <= RATE + 1e-9, (now, {w: p.share("default", now) for w, p in plans.items()})
    assert worst > RATE * 0.9  # the workers did use the rate, not just stay under it


def test_rate_plan_announcements_kafka_never_acknowledges_stay_few_and_keep_the_least() -> None:
    p = plan(A)
    settle(p, 3, at=0.0)
    p.read_back(0.0)
    for n in range(1000):  # Kafka away: two a second for eight minutes, none acknowledged
        p.wanted = {"default": 1 if n == 500 else 4}
        p.announce()
    assert len(p.sent) <= 32
    # The settled 3, then at least once 1: a worker with a current view may hold 1 for us.
    assert p.settled("default", now=SETTLE + 1) == 1
