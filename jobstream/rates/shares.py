"""This worker's share of every account's rate, kept in step with the other workers over a
small compacted topic, `<app.name>-rate-claims` (one partition, keyed by worker).

Every `HEARTBEAT` seconds, and at once when what it wants changes, the worker announces its
claims (per account, the tasks it wants to crawl now); it reads the topic from the start and
keeps every worker's latest claims; after each change of either it sets the rate of each
account's limiter to its share (`plan.SharePlan` says why the shares never add up to more than
the account's rate). A limiter asks for the shares to be brought up to date before any request
starts, so a share that time alone changes (a raise settling, a view going stale) is applied
before the next request, even if the event loop was busy when it fell due.

Kafka unreachable: the announcements fail, the view goes stale, and each worker keeps to what
it can prove alone (its claim, the others' owned tasks): slower, never over the rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from jobstream import metrics
from jobstream.broker.clients import client_options, start_or_close
from jobstream.config import Config
from jobstream.logs import UNDECIDED, KafkaStory
from jobstream.rates.plan import HEARTBEAT, Announcement, SharePlan, accounts_of
from jobstream.source.limiter import RateLimiter
from jobstream.topics import rate_claims_topic
from jobstream.worker_state import WorkerState

logger = logging.getLogger(__name__)

# Longest an announcement waits for the broker before it counts as not acknowledged.
SEND_TIMEOUT = 5.0
# The claims reader's fetch wait, at least. The embedded broker holds every fetch for the whole
# wait (jobstream.broker.transport), so the 50 ms the pipeline uses there meant 20 fetches a
# second, day and night, to read two claims a second: about 2 % of a core in the worker and 2.5 %
# in the broker of an idle worker (benchmarks/bench_idle.py). A claim is still read back well
# within FRESH: a heartbeat, this wait, and room for a busy event loop.
READ_WAIT_MS = 200
# Seconds between two attempts to start reading the topic while Kafka does not answer.
RETRY_PAUSE = 2.0


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """A worker's claims on the topic: per account, the tasks it wants to crawl now. `run`
    tells one process of the worker from the next (a restart keeps the worker's URL, the key);
    `seq` numbers its announcements."""

    run: str
    seq: int
    claims: dict[str, int]


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Claim)


class RateShares(Service):
    """The limiters of this worker's accounts, each at this worker's share of its rate.

    `wanted()` says, per account, how many tasks the worker wants to crawl now (the crawl
    counts those it owns that are running or due soon)."""

    def __init__(
        self,
        config: Config,
        worker: WorkerState,
        wanted: Callable[[], Mapping[str, int]],
        story: KafkaStory | None = None,
        **kwargs: Any,
    ) -> None:
        self.config = config
        # Whether Kafka answers the probe: a failure during an outage is the outage's.
        self.story = story
        self.worker = worker
        self._wanted = wanted
        rates = {account.name: account.per_second for account in config.accounts}
        enabled = [config.task(t).account for t in config.api.enabled_task_ids]
        self.plan = SharePlan(accounts_of(rates, enabled), me="")
        # Held (rate 0) until the first update says what this worker may use.
        self.limiters = {name: RateLimiter(check=self.refresh) for name in rates}
        for limiter in self.limiters.values():
            limiter.set_rate(0)
        self._run = uuid.uuid4().hex[:12]
        self._seq = 0
        self._sent_at: dict[int, float] = {}  # seq -> when sent, until read back
        self._announced: dict[str, int] | None = None
        self._wake = asyncio.Event()
        self._next_change = 0.0
        self._was_current = False
        self._closing = False
        # What is failing (announcing, reading): since when, and whether the log said so.
        self._failing: dict[str, tuple[float, bool]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        super().__init__(**kwargs)

    def limiter(self, account: str) -> RateLimiter:
        return self.limiters[account]

    def update(self) -> None:
        """Bring the inputs (assignment, wanted tasks) and the shares up to date; announce at
        once if the claims changed."""
        plan = self.plan
        plan.me = self.worker.me()
        plan.members = self.worker.members()
        plan.owned = dict(self.worker.owned_by_account())
        wanted = {} if self._closing else self._wanted()
        plan.wanted = {name: n for name, n in wanted.items() if n > 0}
        if plan.wanted != self._announced:
            self._wake.set()
        self._apply(time.monotonic())

    def refresh(self) -> None:
        """Called by a limiter before a request starts: apply what time alone has changed."""
        now = time.monotonic()
        if now >= self._next_change:
            self._apply(now)

    def _apply(self, now: float) -> None:
        plan = self.plan
        for name, share in plan.shares(now).items():
            limiter = self.limiters[name]
            if share != limiter.per_second:
                logger.debug("account=%s this worker's share is now %.2f calls/s", name, share)
            limiter.set_rate(share)
            metrics.RATE_SHARE.labels(name).set(share)
        self._next_change = plan.next_change(now)
        current = plan.is_current(now)
        if current != self._was_current and not plan.alone:
            # At debug: under load the view goes stale for a moment now and then, which only
            # makes the share smaller; Kafka failing to answer is logged where it fails.
            logger.debug(
                "rate shares: the view of the other workers' claims is %s",
                "up to date" if current else "not up to date (counting their tasks)",
            )
        self._was_current = current

    async def on_start(self) -> None:
        self.plan.me = self.worker.me()
        self.update()

    async def on_stop(self) -> None:
        # Nothing claimed any more: the others take the share back at once, not after this
        # worker leaves the group.
        self._closing = True
        for limiter in self.limiters.values():
            limiter.set_rate(0)
        self.plan.wanted = {}
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._announce(), 1.0)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    @Service.task
    async def _keep_announcing(self) -> None:
        while not self.should_stop:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), HEARTBEAT)
            self._wake.clear()
            try:
                self.update()
                await self._announce()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed("announcing the claims", exc)
            else:
                self._recovered("announcing the claims")

    async def _announce(self) -> None:
        plan = self.plan
        announcement = plan.announce()
        self._seq += 1
        seq = self._seq
        value = _ENCODER.encode(Claim(run=self._run, seq=seq, claims=announcement.claims))
        self._announced = announcement.claims
        self._sent_at[seq] = time.monotonic()
        if len(self._sent_at) > 64:  # not read back (Kafka away): keep the newest
            for old in sorted(self._sent_at)[:-64]:
                del self._sent_at[old]
        producer = self.worker.producer()
        delivery = await producer.send(
            rate_claims_topic.get_topic_name(), value, key=plan.me.encode(), partition=0
        )
        await asyncio.wait_for(delivery, SEND_TIMEOUT)
        _acked(announcement, time.monotonic())
        self._apply(time.monotonic())

    @Service.task
    async def _follow_rebalances(self) -> None:
        # A rebalance began: this worker owns nothing until it ends, so it asks for nothing,
        # at once rather than at the next heartbeat.
        while not self.should_stop:
            await self.worker.reassigned.wait()
            self.update()

    @Service.task
    async def _keep_reading(self) -> None:
        while not self.should_stop:
            try:
                consumer = await self._reader()
                batches = await consumer.getmany(timeout_ms=int(HEARTBEAT * 1000))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed("reading the claims", exc)
                await self._drop_reader()
                await self.sleep(RETRY_PAUSE)
                continue
            self._recovered("reading the claims")
            for records in batches.values():
                for record in records:
                    self._read(record.key, record.value)
            self._apply(time.monotonic())

    def _failed(self, what: str, exc: Exception) -> None:
        """One WARNING when something has kept failing for `UNDECIDED` seconds while Kafka
        answers the probe, not one a heartbeat. While Kafka is unreachable the failure is the
        outage's, which the log tells once (`jobstream.logs`): it is said at DEBUG."""
        now = time.monotonic()
        since, told = self._failing.get(what, (now, False))
        outage = self.story is not None and self.story.up is False
        if not told and not outage and not self.should_stop and now - since >= UNDECIDED:
            logger.warning(
                "rate shares: %s failed for %.0fs while Kafka answers (%r); this worker's "
                "shares stay on the safe side (no raise, the others' tasks all counted) until "
                "it works again",
                what,
                now - since,
                exc,
            )
            told = True
        else:
            logger.debug("rate shares: %s failed (%r)", what, exc)
        self._failing[what] = (since, told)

    def _recovered(self, what: str) -> None:
        failing = self._failing.pop(what, None)
        if failing is not None:
            logger.log(
                logging.INFO if failing[1] else logging.DEBUG, "rate shares: %s works again", what
            )

    async def _reader(self) -> AIOKafkaConsumer:
        if self._consumer is not None:
            return self._consumer
        await rate_claims_topic.maybe_declare()
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"{self.config.app.name}-rate-claims",
            fetch_max_wait_ms=max(self.config.kafka.fetch_max_wait_ms, READ_WAIT_MS),
            **client_options(self.config),
        )
        await start_or_close(consumer.start(), consumer.stop)
        partition = TopicPartition(rate_claims_topic.get_topic_name(), 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        self._consumer = consumer
        return consumer

    async def _drop_reader(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()

    def _read(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        worker = key.decode(errors="replace")
        if value is None:
            self.plan.read(worker, None)
            return
        try:
            claim = _DECODER.decode(value)
        except msgspec.DecodeError as exc:
            logger.warning("rate shares: a claim of %s cannot be read: %s", worker, exc)
            return
        if worker == self.plan.me:
            if claim.run == self._run:
                sent_at = self._sent_at.pop(claim.seq, None)
                if sent_at is not None:
                    self.plan.read_back(sent_at)
            return  # this worker's own claims are in the plan already (a past run's count none)
        self.plan.read(worker, claim.claims)


def _acked(announcement: Announcement, at: float) -> None:
    announcement.acked_at = at
