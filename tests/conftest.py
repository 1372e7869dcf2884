"""Fixtures that start real parts: a broker, the API simulator and the worker (tests/harness.py).

`session_broker` is the one Tansu broker the tests share: the in-process web tests, and workers
given a name of their own (`worker_factory(name=...)`, `harness.namespace`: their app id,
consumer group and topics are theirs). `broker` is a broker of a test's own, for workers on the
default names, and for a test that stops, hangs or cuts its broker.

After every test, every log line written meanwhile (each worker's log file, and the log records
of this process) is searched for every secret the tests configured or were handed
(`harness.SECRETS`): one found fails the test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import SECRETS, Broker, LogLines, Simulator, Worker, read_topic, reap

__all__ = ["read_topic"]  # imported from here by older tests; it lives in tests.harness


@pytest.fixture(scope="session", autouse=True)
def _log_lines() -> Iterator[None]:
    """Every log record of this process (jobstream's own from INFO up, the others' from
    WARNING up, as by default), for `_no_secret_in_any_log`."""
    root, ours = logging.getLogger(), logging.getLogger("jobstream")
    handler = LogLines(SECRETS.lines)
    level = ours.level
    root.addHandler(handler)
    ours.setLevel(logging.INFO)
    yield
    root.removeHandler(handler)
    ours.setLevel(level)


@pytest.fixture(autouse=True)
def _no_secret_in_any_log() -> Iterator[None]:
    yield
    leaks = SECRETS.leaks()
    if leaks:
        pytest.fail("a secret reached a log:\n" + "\n".join(leaks[:10]), pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _workers_stopped_at_the_end() -> Iterator[None]:
    """Workers a fixture stopped without waiting (`Worker.stop(wait=False)`) end before the
    session does; what they logged while stopping is searched for secrets too."""
    yield
    reap()
    leaks = SECRETS.leaks()
    if leaks:
        pytest.fail("a secret reached a log:\n" + "\n".join(leaks[:10]), pytrace=False)


@pytest.fixture(scope="session")
def session_broker() -> Iterator[Broker]:
    started = Broker.start()
    yield started
    started.stop()


@pytest.fixture
def broker() -> Iterator[Broker]:
    started = Broker.start()
    yield started
    started.stop()


@pytest.fixture
def simulator_factory() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def start(*args: str) -> Simulator:
        sim = Simulator.serve("--rate-limit", "0", *args)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def make(name: str | None = None, **overrides: dict[str, Any]) -> Worker:
        worker = Worker.configure(tmp_path, overrides, name=name)
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop(wait=False)
