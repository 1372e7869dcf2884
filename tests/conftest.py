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
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import SECRETS, Broker, LogLines, Simulator, Worker, read_topic, reap

__all__ = ["read_topic"]  # imported from here by older tests; it lives in tests.harness


# Tiers that start no worker (tests/deploy's one image run aside).
FAST_TIERS = ("deploy", "functional", "unit")
# Work units of a minute or more, handed out first (longest first: the two processes finish
# closer together).
LONG_UNITS = (
    "tests/integration/test_spool.py",
    "tests/integration/test_dedupe.py",
    "tests/integration/test_workers.py",
    "tests/integration/test_dashboard_truth.py",
    "tests/integration/test_hostile.py",
    "tests/integration/test_log_lines.py",
    "fast",
    "tests/integration/test_embedded.py",
    "tests/integration/test_web_worker.py",
)


def work_unit(nodeid: str) -> str:
    """What `pytest -n 2 --dist loadscope` (setup.cfg) hands a process at once: an end-to-end
    file (its module fixtures and its order kept), the fast tiers together, or tests/web."""
    path = nodeid.split("::")[0]
    parts = path.split("/")
    if parts[:2] == ["tests", "web"]:
        return "tests/web"
    if len(parts) == 2 or parts[1] in FAST_TIERS:
        return "fast"
    return path


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """The work units of `work_unit`, handed out in collection order."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return WorkUnits(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In a process of `pytest -n` (whose collection orders the work units): LONG_UNITS first,
    tests/web last. The web tier closes its apps when its process ends; some have lost their
    broker on purpose, and closing those long after their tests (when more files ran after
    them in that process) made aiokafka's consumer raise on close. Without `-n`, nothing
    changes."""

    def order(item: pytest.Item) -> tuple[bool, int]:
        unit = work_unit(item.nodeid)
        first = LONG_UNITS.index(unit) if unit in LONG_UNITS else len(LONG_UNITS)
        return unit == "tests/web", first

    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=order)


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

    def start(*args: str, own_process: bool = False) -> Simulator:
        """A simulator on a thread of this process; with `own_process`, in a process of its
        own (where it times arrivals, free of this process's work)."""
        serve = Simulator.start if own_process else Simulator.serve
        sim = serve("--rate-limit", "0", *args)
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
