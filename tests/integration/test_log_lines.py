"""What the worker's log says, counted line by line: one line per change of state, not one per
event. A network cut between the worker and Kafka (tests/proxy.py, as in test_spool.py), a
healthy demo run with its bad rows, Ctrl-C in a terminal, and an embedded broker that dies."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator

import pytest

from tests.harness import Broker, Simulator, Worker, free_port
from tests.proxy import Proxy

pytestmark = pytest.mark.slow

CUT_SECONDS = 20
# One summary falls within the cut, the next would come after it.
SUMMARY_INTERVAL = 12
ROWS = 12_000
# 2 requests of 100 rows a second: the cut falls mid-crawl.
API = {"batch_size": 100, "max_requests_per_second": 2, "max_pages_in_flight": 2}
CUT_AT = 1_500

LINE = re.compile(r"^\[[^\]]+\] \[\d+\] \[(?P<level>[A-Z]+)\] (?P<text>.*)$")
# What aiokafka writes for every failed attempt while Kafka is unreachable.
CONNECTION_NOISE = re.compile(
    r"Unable connect to node|Unable to (update|request) metadata|NodeNotReady|"
    r"Failed fetch messages|Coordinator Request failed|Got error produce response"
)


def entries(text: str) -> list[tuple[str, str]]:
    """(level, message) of each log line; a line that is not a record (a traceback's, a
    Faust table's) is ("", line)."""
    found = []
    for line in text.splitlines():
        match = LINE.match(line)
        found.append((match["level"], match["text"]) if match else ("", line))
    return found


def serious(found: list[tuple[str, str]]) -> list[str]:
    return [text for level, text in found if level in ("WARNING", "ERROR", "CRITICAL")]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    started = Simulator.start("--rate-limit", "0", "--total", str(ROWS))
    yield started
    started.stop()


@pytest.mark.timeout(240)
def test_log_broker_cut_20s_is_a_few_lines_without_traceback(sim, tmp_path) -> None:
    proxy_port = free_port()
    broker = Broker.start(advertised_port=proxy_port)
    proxy = Proxy(broker.port, proxy_port).start()
    worker = Worker.configure(
        tmp_path,
        {
            "api": sim.api(**API),
            "kafka": {
                "bootstrap_servers": f"127.0.0.1:{proxy_port}",
                "outage_summary_interval": SUMMARY_INTERVAL,
            },
            "crawler": {"interval": 3600},
        },
    )
    try:
        worker.start()
        worker.wait_ready()
        worker.wait_status(lambda s: s["current_offset"] >= CUT_AT, timeout=60)
        before = len(worker.log().splitlines())
        proxy.cut()
        time.sleep(CUT_SECONDS)
        during = worker.log().splitlines()[before:]
        proxy.restore()
        worker.wait_status(lambda s: s["spool"]["pages"] == 0, timeout=120)
        worker.wait_status(lambda s: s["current_offset"] == ROWS, timeout=120)
        worker.wait_ready(30)
        after = worker.log().splitlines()[before:]
    finally:
        worker.stop()
        proxy.stop()
        broker.stop()

    print(f"{len(during)} lines during the {CUT_SECONDS}s cut, {len(after)} until caught up:")
    print("\n".join(after))
    cut, whole = entries("\n".join(during)), entries("\n".join(after))
    # During the cut: the outage's start, one summary, and at most one line of the crawl
    # (its end reached while Kafka is away).
    assert 2 <= len(cut) <= 3, during
    # Until the crawl caught up: the start, the summary, the end, the drained spool, and the
    # Kafka client's own INFO lines as it reconnects (a handful), none of them a traceback.
    assert len(whole) <= 10, after
    assert not [line for level, line in whole if not level], "a line that is not a record"
    assert not any("Traceback" in line or CONNECTION_NOISE.search(line) for line in after)
    unreachable = [t for level, t in whole if level == "ERROR" and "is unreachable" in t]
    assert len(unreachable) == 1 and "fetched pages go to the local spool" in unreachable[0]
    summaries = [t for level, t in whole if "still unreachable after" in t]
    assert len(summaries) == 1 and re.search(
        r"the local spool holds [1-9]\d* fetched pages", summaries[0]
    )
    assert re.search(r"held back: \d+ connection errors of the Kafka client", summaries[0])
    back = [t for level, t in whole if level == "INFO" and "is reachable again after" in t]
    assert len(back) == 1
    assert re.search(r"spool drained: \d+ events", "\n".join(after))
    # Warnings: the start and the summary, and at most one line of the libraries' about the
    # group they rejoin (a kind not seen during the outage).
    assert serious(whole)[:2] == [unreachable[0], summaries[0]]
    assert len(serious(whole)) <= 3, serious(whole)


@pytest.mark.timeout(180)
def test_log_demo_run_says_rejects_once_and_ctrl_c_stops_cleanly(worker_factory) -> None:
    worker = worker_factory()  # config/config.yml as shipped: demo simulator, embedded broker
    worker.start()
    worker.wait_ready()
    status = worker.wait_status(lambda s: s["progress"] == "100.00%" and s["status"] == "idle")
    log = worker.log()
    rejected = status["rows"]["rejected"]

    found = entries(log)
    assert rejected > 0
    # The rows rejected: one INFO line for the run (none a page), meanings spelled out.
    lines = [(level, t) for level, t in found if "rows rejected" in t]
    assert len(lines) == 1 and lines[0][0] == "INFO", lines
    assert f"{rejected} rows rejected in offsets 0.." in lines[0][1]
    assert "(publish date)" in lines[0][1] or "(collect time)" in lines[0][1]
    assert "the demo data holds bad rows on purpose" in lines[0][1]
    # What the demo is, said once at start.
    [demo] = [t for _, t in found if t.startswith("demo mode")]
    assert "invented job postings" in demo and "bad on purpose" in demo
    # Nothing an operator must act on, but the unprotected endpoints (app.*_token).
    assert [t for t in serious(found) if "_token" not in t] == []

    # Ctrl-C in a terminal: SIGINT to the whole foreground process group.
    assert worker.process is not None
    os.killpg(worker.process.pid, signal.SIGINT)
    code = worker.process.wait(timeout=20)
    stopped = worker.log()[len(log) :]
    assert code == 0, stopped[-3000:]
    assert "embedded broker stopped" in stopped
    assert serious(entries(stopped)) == [] and "Traceback" not in stopped, stopped[-3000:]


@pytest.mark.timeout(120)
def test_log_embedded_broker_death_is_one_error_with_exit_code(worker_factory) -> None:
    worker = worker_factory()
    worker.start()
    worker.wait_ready()
    worker.wait_status(lambda s: s["progress"] == "100.00%")
    [broker] = worker.broker_pids()
    before = len(worker.log())
    assert worker.process is not None

    os.kill(broker, signal.SIGKILL)
    code = worker.process.wait(timeout=10)
    after = worker.log()[before:]

    print(after)
    assert code == 1
    found = entries(after)
    assert serious(found) == [
        next(t for _, t in found if f"(Tansu, pid {broker}) exited with code -9" in t)
    ]
    assert "exit code 1" in serious(found)[0]
    assert "Traceback" not in after and "NoneType: None" not in after
    assert not [line for level, line in found if not level], "a line that is not a record"
