"""The log's policy (jobstream/logs.py): what a Kafka outage writes, and what is held back,
through a real logger and handler with the HoldBack filter, on a clock the test moves."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from jobstream.logs import UNDECIDED, HoldBack, KafkaStory

SUMMARY = 60.0


@dataclass(frozen=True)
class Size:
    pages: int
    rows: int
    bytes: int


class FakeSpool:
    path = "data/crawl_progress-spool.sqlite3"
    max_bytes = 1000

    def __init__(self) -> None:
        self.held = Size(0, 0, 0)

    def size(self, task_id: str | None = None) -> Size:
        return self.held


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Written(logging.Handler):
    """What reaches the log, as (logger, level, message)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelname, record.getMessage()))

    def texts(self, level: str | None = None) -> list[str]:
        return [t for _, lv, t in self.records if level is None or lv == level]


@dataclass
class Setup:
    story: KafkaStory
    clock: Clock
    written: Written
    spool: FakeSpool
    failure: list[str]


@pytest.fixture
def setup() -> Iterator[Setup]:
    clock, written, spool, failure = Clock(), Written(), FakeSpool(), []
    story = KafkaStory(
        "kafka:9092", SUMMARY, failure=lambda: failure[0] if failure else None, clock=clock
    )
    story.spool = spool
    written.addFilter(HoldBack(story))
    # The story's own logger, and loggers named as the libraries' are (the libraries' own are
    # left alone), all to this handler only.
    loggers = [logging.getLogger(name) for name in ("jobstream.logs", *LOGGERS.values())]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(written)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    yield Setup(story, clock, written, spool, failure)
    for lg, (level, propagate) in zip(loggers, saved, strict=True):
        lg.removeHandler(written)
        lg.setLevel(level)
        lg.propagate = propagate


LOGGERS = {
    "aiokafka": "aiokafka.test_logs",
    "faust": "faust.test_logs",
    "asyncio": "asyncio.test_logs",
    "ours": "jobstream.test_logs",
}


def log(who: str) -> logging.Logger:
    return logging.getLogger(LOGGERS[who])


def noise(n: int = 1) -> None:
    for _ in range(n):
        log("aiokafka").error(
            "Unable connect to node with id %s: %s", 111, "[Errno 111] Connect call failed"
        )


def test_logs_outage_one_error_summaries_one_info(setup: Setup) -> None:
    story, clock, written = setup.story, setup.clock, setup.written
    story.found_up()
    noise(5)  # before the probe noticed: held, undecided
    story.found_down("KafkaConnectionError: closed")
    noise(100)
    setup.spool.held = Size(3, 300, 900)
    for _ in range(29):  # every 2 s for 58 s: no summary yet
        clock.now += 2
        story.found_down("KafkaConnectionError: closed")
    clock.now += 2
    story.found_down("KafkaConnectionError: closed")
    clock.now += 30
    story.found_up()
    story.found_up()

    errors, warnings, infos = (written.texts(lv) for lv in ("ERROR", "WARNING", "INFO"))
    assert len(errors) == 1 and "Kafka at kafka:9092 is unreachable" in errors[0]
    assert "fetched pages go to the local spool data/crawl_progress-spool.sqlite3" in errors[0]
    assert warnings == [
        "Kafka at kafka:9092 still unreachable after 1m00s: the local spool holds 3 fetched "
        "pages (300 rows, 900 bytes of at most 1000); held back: 105 connection errors of the "
        "Kafka client"
    ]
    assert len(infos) == 1 and "reachable again after 1m30s" in infos[0]
    assert "sent to job_raw before new pages" in infos[0]


def test_logs_outage_other_library_warning_once_own_lines_always(setup: Setup) -> None:
    setup.story.found_down("no answer within 3s")
    library, ours = log("faust"), log("ours")
    for _ in range(3):
        library.warning("Timer %s is overlapping (interval=%r)", "commit", 2.8)
        library.warning("Something else at offset %d", 7)
        ours.warning("task_id=t offset=%d crawl run failed", 7)

    texts = setup.written.texts("WARNING")
    assert texts.count("Something else at offset 7") == 1
    assert not [t for t in texts if "overlapping" in t]
    assert texts.count("task_id=t offset=7 crawl run failed") == 3


def test_logs_just_after_an_outage_its_fallout_is_still_held(setup: Setup) -> None:
    story, clock = setup.story, setup.clock
    story.found_down("closed")
    log("faust").warning("Something else at offset %d", 7)
    clock.now += 20
    story.found_up()
    noise(3)
    log("faust").warning("Timer %s is overlapping (interval=%r)", "commit", 2.8)
    log("faust").warning("Something else at offset %d", 7)
    clock.now += UNDECIDED
    log("faust").warning("Something else at offset %d", 7)
    clock.now += 2 * UNDECIDED
    story.found_up()

    assert setup.written.texts("WARNING") == ["Something else at offset 7"] * 2
    assert not [t for t in setup.written.texts() if "connection errors in" in t]


def test_logs_connection_errors_while_kafka_answers_told_once_they_persist(setup: Setup) -> None:
    story, clock = setup.story, setup.clock
    story.found_up()
    noise(10)
    story.found_up()  # the probe still finds Kafka: undecided, not told yet
    assert setup.written.records == []
    clock.now += UNDECIDED
    noise(10)
    story.found_up()
    clock.now += 2
    story.found_up()

    [told] = setup.written.texts()
    assert told.startswith("the Kafka client reported 20 connection errors in 10s while Kafka")
    assert "(a broker of the cluster unreachable?)" in told
    assert "Unable connect to node with id 111" in told
    assert setup.written.records[0][1] == "WARNING"
    # They go on: told again one summary interval later, not at every probe.
    for _ in range(int(SUMMARY / 2)):
        clock.now += 2
        noise(2)
        story.found_up()
    assert len(setup.written.texts("WARNING")) == 2


def test_logs_connection_errors_that_stopped_are_one_info_later(setup: Setup) -> None:
    story, clock = setup.story, setup.clock
    story.found_up()
    noise(3)
    clock.now += 2
    story.found_up()
    assert setup.written.records == []
    clock.now += UNDECIDED
    story.found_up()
    story.found_up()

    assert [(lv, t[:60]) for _, lv, t in setup.written.records] == [
        ("INFO", "the Kafka client reported 3 connection errors in 0.0s while ")
    ]


def test_logs_broker_died_library_fallout_held_own_lines_kept(setup: Setup) -> None:
    setup.story.found_up()
    setup.failure.append("the embedded broker exited with code -9")
    log("ours").error("the embedded broker (Tansu, pid 1) exited")
    log("ours").error("[^---EmbeddedBroker]: Crashed reason=%r", "x")
    log("faust").critical("We experienced a crash! Reraising...")
    log("faust").info("Restarting dead agent", exc_info=True)
    log("asyncio").error("Task exception was never retrieved")

    assert setup.written.texts() == ["the embedded broker (Tansu, pid 1) exited"]


def test_logs_thread_ending_in_outage_is_debug_else_one_error(setup: Setup) -> None:
    story = setup.story

    def crash(error: BaseException) -> None:
        try:
            raise error
        except BaseException as exc:
            story.thread_ended(threading.ExceptHookArgs((type(exc), exc, exc.__traceback__, None)))

    crash(ValueError("a bug"))
    story.found_down("closed")
    crash(ConnectionResetError("reset by peer"))

    assert [(lv, t) for _, lv, t in setup.written.records if "thread" in t] == [
        ("ERROR", "thread ? ended with ValueError('a bug')")
    ]
