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


# Tiers that start no worker (tests/deploy's one image run aside), one work unit each.
FAST_TIERS = ("deploy", "functional", "unit")
# The in-process HTTP tests: two work units (schemathesis's cases, and the rest), both last.
WEB_UNITS = ("tests/web/test_openapi.py", "tests/web")
# Seconds each work unit took (`pytest --durations=0`, summed per unit, on the 2-core machine
# under other work): handed out longest first, so the two processes finish close together. A
# file not listed counts as UNLISTED.
UNIT_SECONDS = {
    "tests/integration/test_rate_shares.py": 85,
    "tests/integration/test_spool.py": 87,
    "tests/integration/test_trace.py": 45,
    "tests/integration/test_exact_counts.py": 40,
    "tests/integration/test_readme_samples.py": 25,
    "tests/integration/test_dashboard_trace.py": 25,
    "tests/integration/test_replay.py": 15,
    "tests/integration/test_partitions.py": 15,
    "tests/integration/test_dedupe.py": 82,
    "tests/integration/test_workers.py": 76,
    "tests/integration/test_kill.py": 74,
    "tests/integration/test_hostile.py": 68,
    "tests/integration/test_log_lines.py": 68,
    "tests/integration/test_dashboard_truth.py": 67,
    "tests/integration/test_embedded.py": 58,
    "tests/integration/test_concurrency.py": 52,
    "tests/integration/test_alerts_worker.py": 52,
    "tests/integration/test_pipeline.py": 51,
    "tests/integration/test_web_worker.py": 49,
    "tests/functional": 47,
    "tests/integration/test_dashboard.py": 42,
    "tests/integration/test_setup_mistakes.py": 38,
    "tests/integration/test_dashboard_many.py": 34,
    "tests/deploy": 23,
    "tests/integration/test_security_worker.py": 21,
    "tests/unit": 16,
    "tests/integration/test_two_workers.py": 9,
}
UNLISTED = 30


def work_unit(nodeid: str) -> str:
    """What `pytest -n 2 --dist loadscope` (setup.cfg) hands a process at once: an end-to-end
    file (its module fixtures and its order kept), a fast tier (the tests at the top of
    tests/ with tests/unit), or one of WEB_UNITS."""
    path = nodeid.split("::")[0]
    parts = path.split("/")
    if parts[:2] == ["tests", "web"]:
        return path if path in WEB_UNITS else "tests/web"
    if len(parts) == 2:
        return "tests/unit"
    if parts[1] in FAST_TIERS:
        return "/".join(parts[:2])
    return path


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """The work units of `work_unit`, handed out in collection order (xdist would sort them by
    their number of tests: the fast tiers and tests/web first, the long one-test end-to-end
    files last), and the next one to a process only once it has started its unit's last test
    (xdist's default gives it two tests ahead: a process starting an end-to-end file of one
    or two long tests took the next file too, while the other might run out of work)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

        def _reschedule(self, node: Any) -> None:
            # LoadScopeScheduling._reschedule, with 1 for its 2. A process runs a test once
            # it knows the next one (or is told to stop): its unit's last test waits for this.
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) > 1:
                return
            self._assign_work_unit(node)

    return WorkUnits(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In a process of `pytest -n` (whose collection orders the work units): the longest
    first (UNIT_SECONDS), WEB_UNITS last. The web tier closes its apps when its process ends;
    some have lost their broker on purpose, and closing those long after their tests (when
    more files ran after them in that process) made aiokafka's consumer raise on close.
    Without `-n`, nothing changes."""

    def order(item: pytest.Item) -> tuple[bool, float]:
        unit = work_unit(item.nodeid)
        return unit in WEB_UNITS, -UNIT_SECONDS.get(unit, UNLISTED)

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
