"""Real parts for the tests and the benchmarks: a Tansu broker, the API simulator and the
worker, each a subprocess on loopback (started and stopped by the fixtures in
tests/conftest.py), and the helpers that talk to them: HTTP calls, reading a topic, waiting for
a condition.

Tests wait for conditions, never for time: `wait_until` polls until a condition holds and fails
with the last value it saw once its deadline has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from jobstream import redaction
from jobstream.config import load as load_config
from jobstream.embedded.orphans import guarded
from jobstream.embedded.tansu import broker_command
from jobstream.redaction import secrets_in, url_pieces

ROOT = Path(__file__).resolve().parents[1]
TASK_ID = "00f3b445-d8ec-44e8-88b2-4b971a228b1e"
# Faust's own variables: a test worker's group session. Tansu completes a group join after
# about half the session timeout (design.md), so every worker start and rebalance takes 1.5 s
# instead of 3 to 5. The heartbeat comes from Faust's consumer thread, not the event loop.
FAST_GROUP_JOINS = {"BROKER_SESSION_TIMEOUT": "3", "BROKER_HEARTBEAT_INTERVAL": "0.75"}
T = TypeVar("T")


def mirrored_offset(path: Path, task_id: str = TASK_ID) -> int:
    """The task's offset in a worker's SQLite mirror at `path` (0 before there is one)."""
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute(
            "SELECT current_offset FROM crawl_progress WHERE task_id = ?", (task_id,)
        ).fetchone()
    except sqlite3.OperationalError:  # the table is not there yet
        return 0
    finally:
        db.close()
    return int(row[0]) if row else 0


def wait_until(probe: Callable[[], T], within: float = 10.0, what: str = "the condition") -> T:
    """Call `probe` until it returns something truthy, and return that; AssertionError naming
    `what` and the last value once `within` seconds have passed."""
    deadline = time.monotonic() + within
    while not (value := probe()):
        assert time.monotonic() < deadline, f"{what} not met after {within}s (last: {value!r})"
        time.sleep(0.05)
    return value


async def wait_until_async(
    probe: Callable[[], Awaitable[T]], within: float = 10.0, what: str = "the condition"
) -> T:
    """`wait_until` for a coroutine function, without blocking the event loop."""
    deadline = time.monotonic() + within
    while not (value := await probe()):
        assert time.monotonic() < deadline, f"{what} not met after {within}s (last: {value!r})"
        await asyncio.sleep(0.02)
    return value


def free_port() -> int:
    """A port free on loopback now. Under pytest-xdist, one of this test process's own
    (`port // 2 % processes == its index`; Linux hands out odd ports to `bind(0)`): two
    processes of the run do not pick the same one."""
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    processes = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    for _ in range(1000):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port // 2 % processes == index:
            break
    return port


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """One HTTP call; returns (status, parsed JSON or text)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    text = raw.decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


@dataclass
class Broker:
    """A Tansu broker that outlives worker restarts (the worker's own is stopped with it)."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, advertised_port: int | None = None) -> Broker:
        """A broker on a free port; with `advertised_port`, the port it tells clients to connect
        to (a proxy's, tests/proxy.py), so every connection after the bootstrap goes there."""
        port = free_port()
        command = broker_command("127.0.0.1", port)
        if advertised_port is not None:
            at = command.index("--advertised-listener-url") + 1
            command[at] = f"tcp://127.0.0.1:{advertised_port}"
        process = subprocess.Popen(
            guarded(command),  # dies with this process at the latest
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(port, 15, process)
        return cls(port, process)

    def stop(self) -> None:
        _terminate(self.process)


@dataclass
class Simulator:
    """`python -m jobstream.simulator` on a free port; ground truth over its admin endpoints."""

    url: str
    process: subprocess.Popen[str] | None
    served: _ServedSimulator | None = None

    @classmethod
    def start(cls, *args: str) -> Simulator:
        """`python -m jobstream.simulator *args` in a process of its own (the benchmarks'
        way: its work does not compete with the measuring process)."""
        process = subprocess.Popen(
            guarded(
                [
                    sys.executable,
                    "-m",
                    "jobstream.simulator",
                    "--port",
                    "0",
                    "--log-level",
                    "WARNING",
                    *args,
                ]
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            _terminate(process)
            raise RuntimeError(f"simulator did not start: {url!r}")
        return cls(url, process)

    def api(self, **overrides: Any) -> dict[str, Any]:
        """The `api` config section of a worker that crawls this simulator."""
        return {"base_url": self.url, "username": "demo", "password": "demo", **overrides}

    def total(self, task_id: str = TASK_ID) -> int:
        _, stats = http("GET", f"{self.url}/_sim/stats")
        return int(stats["totals"][task_id])

    def truth(
        self, task_id: str = TASK_ID, offset: int = 0, size: int | None = None
    ) -> list[dict[str, Any]]:
        size = self.total(task_id) - offset if size is None else size
        # Long descriptions make a big answer: a generous timeout on a busy machine.
        _, body = http(
            "GET",
            f"{self.url}/_sim/truth?taskId={task_id}&offset={offset}&size={size}",
            timeout=60,
        )
        return list(body["rows"])

    def rows(self, task_id: str = TASK_ID) -> list[dict[str, Any]]:
        """Every row as the API serves it (ground truth for the field mapping)."""
        _, token = http(
            "POST",
            f"{self.url}/token",
            {"username": "demo", "password": "demo", "grant_type": "password"},
        )
        auth = {"Authorization": f"Bearer {token['data']['access_token']}"}
        rows: list[dict[str, Any]] = []
        while True:
            _, page = http(
                "GET",
                f"{self.url}/data/all?taskId={task_id}&offset={len(rows)}&size=1000",
                headers=auth,
            )
            rows.extend(page["data"]["data"])
            if page["data"]["restTotal"] == 0:
                return rows

    def stats(self) -> dict[str, Any]:
        _, stats = http("GET", f"{self.url}/_sim/stats")
        return dict(stats)

    def grow(self, n: int, task_id: str | None = None) -> None:
        """Collect `n` more rows for `task_id`, or for every task."""
        http("POST", f"{self.url}/_sim/grow", {"n": n, **({"taskId": task_id} if task_id else {})})

    def page_bytes(self, offset: int, size: int, task_id: str = TASK_ID) -> bytes:
        """One /data/all body as served: hostile rows may make it invalid UTF-8 or unparseable."""
        _, token = http(
            "POST",
            f"{self.url}/token",
            {"username": "demo", "password": "demo", "grant_type": "password"},
        )
        request = urllib.request.Request(
            f"{self.url}/data/all?taskId={task_id}&offset={offset}&size={size}",
            headers={"Authorization": f"Bearer {token['data']['access_token']}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return bytes(response.read())

    def faults(self, **spec: Any) -> dict[str, Any]:
        """Change the injected faults (`POST /_sim/faults`): latency_ms, fail_rate,
        fail_rate_status, fail_next={"n": ...}, stall_next={...}, clear=True; returns them all."""
        status, body = http("POST", f"{self.url}/_sim/faults", spec)
        assert status == 200, body
        return dict(body)

    def cursor_fault(
        self, kind: str, at_offset: int, task_id: str = TASK_ID, **params: Any
    ) -> dict[str, Any]:
        """Arm a cursor anomaly (kind: jump, long_page, backwards, empty; params: skip, extra,
        cursor, back, times); returns what is armed and what has fired."""
        spec = {"kind": kind, "at_offset": at_offset, "taskId": task_id, **params}
        status, body = http("POST", f"{self.url}/_sim/cursor", spec)
        assert status == 200, body
        return dict(body)

    def cursor(self) -> dict[str, Any]:
        _, body = http("GET", f"{self.url}/_sim/cursor")
        return dict(body)

    def reset(self, total: int, seed: int | None = None, task_id: str = TASK_ID) -> dict[str, Any]:
        """Clear the task's data and collect `total` rows again (another seed: other content)."""
        spec: dict[str, Any] = {"taskId": task_id, "total": total}
        if seed is not None:
            spec["seed"] = seed
        status, body = http("POST", f"{self.url}/_sim/reset", spec)
        assert status == 200, body
        return dict(body)

    def issued_tokens(self) -> list[str]:
        """Every access and refresh token this simulator has handed out."""
        _, body = http("GET", f"{self.url}/_sim/tokens")
        return [t[key] for t in body["tokens"] for key in ("access_token", "refresh")]

    @classmethod
    def serve(cls, *args: str) -> Simulator:
        """The same simulator, from the same command-line arguments, served over real HTTP by
        an event loop on a thread of this process: ready in milliseconds instead of a Python
        start-up (what the tests use; a worker reaches it exactly as it reaches the other)."""
        served = _ServedSimulator(args)
        return cls(served.url, None, served)

    def stop(self) -> None:
        running = self.process.poll() is None if self.process else self.served is not None
        if running:
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                SECRETS.watch(*self.issued_tokens())
        if self.process is not None:
            _terminate(self.process)
        if self.served is not None:
            self.served.stop()
            self.served = None


class _ServedSimulator:
    """A SimulatorServer on its own event loop thread, started and stopped from plain code."""

    def __init__(self, args: tuple[str, ...]) -> None:
        from jobstream.simulator.__main__ import config_from_args, parse_args
        from jobstream.simulator.server import SimulatorServer

        options = parse_args(["--port", "0", *args])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="simulator", daemon=True
        )
        self._thread.start()
        self.server = SimulatorServer(
            config_from_args(options), host=options.host, port=options.port
        )
        self.url = self._run(self.server.start())

    def _run(self, step: Awaitable[T]) -> T:
        async def call() -> T:
            return await step

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(30)

    def stop(self) -> None:
        try:
            self._run(self.server.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()


@dataclass
class Worker:
    """`faust -A jobstream worker` with a config file written for the test."""

    config_path: Path
    web_port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    # Tests want quick group joins; a benchmark measuring start-up wants the real settings.
    fast_group_joins: bool = True
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    _log_file: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def config(self) -> dict[str, Any]:
        return dict(yaml.safe_load(self.config_path.read_text()))

    def topic(self, name: str) -> str:
        """This worker's name for a topic of the default config (`job_data`, `job_raw`, ...,
        `jobstream-crawl_progress-changelog`)."""
        config = self.config
        kafka, app_id = config["kafka"], config["app"]["name"]
        names = {default: kafka.get(key, default) for default, key in TOPIC_KEYS.items()}
        if name in names:
            return str(names[name])
        table = name.removeprefix("jobstream-").removesuffix("-changelog")
        assert name == f"jobstream-{table}-changelog", f"not a topic of the config: {name}"
        return f"{app_id}-{table}-changelog"

    @property
    def bootstrap(self) -> str:
        """The broker this worker uses (its embedded one on the embedded defaults)."""
        kafka = self.config["kafka"]
        if kafka["bootstrap_servers"] == "embedded":
            return f"127.0.0.1:{kafka['embedded_port']}"
        return str(kafka["bootstrap_servers"])

    @classmethod
    def configure(
        cls, tmp: Path, overrides: dict[str, dict[str, Any]], name: str | None = None
    ) -> Worker:
        """A worker's config file in `tmp`: the repo's config on free ports, `overrides` on
        top. With `name`, the Faust app id, the /consume group and every topic are its own
        (`namespace`): workers of different names share a broker without meeting."""
        config = yaml.safe_load((ROOT / "config" / "config.yml").read_text())
        config["app"]["web_port"] = free_port()
        config["kafka"]["embedded_port"] = free_port()
        config["database"]["path"] = str(tmp / "data" / "crawl_progress.db")
        for section, values in [*namespace(name or "").items(), *overrides.items()]:
            config.setdefault(section, {}).update(values)
        path = tmp / "config.yml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True))
        worker = cls(path, config["app"]["web_port"], tmp / "worker.log")
        SECRETS.watch(*secrets_in(load_config(path, env={})))
        SECRETS.watch_file(worker.log_path)
        return worker

    def start(self, cmd: list[str] | None = None) -> Worker:
        SECRETS.watch(*secrets_in(load_config(self.config_path, env=self.env)))
        joins = FAST_GROUP_JOINS if self.fast_group_joins else {}
        env = {**os.environ, **joins, "CONFIG_PATH": str(self.config_path), **self.env}
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        log = self.log_path.open("ab")
        self._log_file = log
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            # Killed when this process dies, at the latest: no worker outlives a test run.
            guarded(
                cmd or [sys.executable, "-m", "faust", "-A", "jobstream", "worker", "-l", "info"]
            ),
            cwd=self.config_path.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds from start until /ready answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"worker exited with {self.process.returncode}:\n{self.log()[-3000:]}"
                )
            try:
                status, _ = http("GET", f"{self.url}/ready", timeout=2)
            except OSError:
                status = 0
            if status == 200:
                return time.monotonic() - self.started_at
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout}s:\n{self.log()[-3000:]}")

    def status(self, task_id: str = TASK_ID, within: float = 30.0) -> dict[str, Any]:
        """The task's /status; asked again while it is 503 (the partitions moving, or a new
        owner recovering its tables: documented, with Retry-After), up to `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            code, body = http("GET", f"{self.url}/status?task_id={task_id}")
            if code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert code == 200, body
        return dict(body["data"])

    def wait_status(
        self, predicate: Any, timeout: float = 60.0, task_id: str = TASK_ID
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status(task_id, within=max(0.0, deadline - time.monotonic()))
            if predicate(status):
                return status
            time.sleep(0.25)
        raise TimeoutError(f"status never matched; last: {status}\n{self.log()[-2000:]}")

    def stop(self, wait: bool = True) -> int:
        """SIGTERM, and its exit code once it ended (killed after 20 s). With `wait=False`
        (a fixture's teardown: no test looks at the code), the worker stops while the next
        test runs; `reap()` waits for every such worker at the end of the session."""
        if self.process is None:
            return 0
        if wait:
            code = _terminate(self.process)
        else:
            code = 0
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                STOPPING.append(self.process)
        self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    def kill(self) -> None:
        """kill -9: no goodbye, nothing flushed, nothing committed."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def broker_pids(self) -> list[int]:
        """The embedded brokers this worker's log says it started, in order."""
        return [int(pid) for pid in re.findall(r"listening on \S+ \(pid (\d+)\)", self.log())]


# The default topic names (config/config.yml) and their keys in the `kafka` section.
TOPIC_KEYS = {
    "job_data": "topic",
    "job_raw": "raw_topic",
    "job_rejects": "rejects_topic",
    "job_commands": "commands_topic",
    "job_candidates": "candidates_topic",
}


def namespace(name: str) -> dict[str, dict[str, Any]]:
    """Config overrides that give a worker an app id, a /consume group and topics of its own
    (`name-job_data`, ...): workers of different names share a broker without meeting (the
    tables' changelogs and Faust's own topics are prefixed with the app id). No name: none."""
    if not name:
        return {}
    kafka = {key: f"{name}-{default}" for default, key in TOPIC_KEYS.items()}
    return {"app": {"name": name}, "kafka": {**kafka, "consumer_group": f"{name}-consumers"}}


# Workers asked to stop without waiting (`Worker.stop(wait=False)`), for `reap`.
STOPPING: list[subprocess.Popen[bytes]] = []


def reap(timeout: float = 20.0) -> list[int]:
    """Wait for every worker stopped without waiting; kill those still running after
    `timeout` s. Returns their exit codes."""
    deadline = time.monotonic() + timeout
    codes = []
    while STOPPING:
        process = STOPPING.pop()
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        codes.append(int(process.returncode))
    return codes


class SecretWatch:
    """The secrets the tests configured or were handed (passwords, tokens, webhook keys), and
    every log they can show up in: worker logs, and the log records of this process. `leaks`
    names each secret found, in any form (escaped, encoded, or cut to its first characters),
    in what was written since the last look."""

    # Public on purpose: the simulator's default credentials.
    PUBLIC = redaction.PUBLIC
    CUT = 8

    def __init__(self) -> None:
        # Each secret, and whether its cut start counts (not for a URL: "http://" is in all).
        self.secrets: dict[str, bool] = {}
        self.files: dict[Path, int] = {}
        self.lines: list[str] = []
        self._lines_seen = 0

    def watch(self, *secrets: str) -> None:
        for secret in secrets:
            if len(secret) < 4 or secret in self.PUBLIC:
                continue
            url = "://" in secret
            self.secrets[secret] = not url
            if url:
                self.secrets.update(dict.fromkeys(url_pieces(secret), True))

    def watch_file(self, path: Path) -> None:
        self.files.setdefault(path, 0)

    def leaks(self) -> list[str]:
        texts = []
        for path, seen in self.files.items():
            # Logs only grow (appended to): one that has not is not opened again. (Every test
            # looks at every log of the session: reading them all took a tenth of a second a
            # test once a few dozen workers had run.)
            if not path.exists() or path.stat().st_size == seen:
                continue
            with path.open("rb") as log:
                log.seek(seen)
                texts.append((str(path), log.read().decode(errors="replace")))
                self.files[path] = log.tell()
        texts.append(("this process's log records", "\n".join(self.lines[self._lines_seen :])))
        self._lines_seen = len(self.lines)
        found = []
        for where, text in texts:
            for secret, cut in self.secrets.items():
                for form in _secret_forms(secret):
                    piece = form[: self.CUT] if cut else form
                    if piece in text:
                        line = next(x for x in text.splitlines() if piece in x)
                        found.append(f"{where}: a secret ({form[:3]}…) in: {line[:300]}")
                        break
        return found


def _secret_forms(secret: str) -> set[str]:
    return {
        secret,
        json.dumps(secret)[1:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
    }


SECRETS = SecretWatch()


class LogLines(logging.Handler):
    """Keeps every log record of this process, formatted, for SECRETS to look through."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append(self.format(record))


def _terminate(process: subprocess.Popen[Any], timeout: float = 20.0) -> int:
    if process.stdout is not None:
        process.stdout.close()
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: int | None = None,
    idle: float | None = None,
    deadline_s: float = 60.0,
    raw: bool = False,
) -> list[Any]:
    """Every message of `topic` from the beginning, as (key, value) pairs, or as aiokafka's
    ConsumerRecords (partition, offset, raw bytes) with `raw=True`.

    Reads to the true end of every partition: the high watermark that a fetch answer, asked
    after the call began, carries (the embedded broker reports end offsets short, so
    `end_offsets()` cannot be trusted; design.md). With `expect`, it goes on until that many
    messages arrived and the end is reached again; with `idle` too, it gives up waiting for
    them once nothing new arrived for `idle` seconds. `deadline_s` bounds the whole read;
    what arrived by then is returned, for the caller's assertion to name what is missing.
    A topic that does not exist holds nothing.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        # An empty fetch at the end comes back at once (the embedded broker answers a fetch
        # only when its wait elapses).
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    messages: list[Any] = []
    try:
        deadline = time.monotonic() + deadline_s
        partitions = await _partitions_of(consumer, topic, wait=expect is not None, until=deadline)
        if not partitions:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        asked_ms = int(time.time() * 1000)
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(*tps, timeout_ms=200)
            got = [m for records in batch.values() for m in records]
            if got:
                messages.extend(got)
                last_new = time.monotonic()
                continue
            enough = expect is None or len(messages) >= expect
            if enough and await _at_true_end(consumer, tps, asked_ms):
                break
            if idle is not None and time.monotonic() - last_new >= idle:
                break
    finally:
        await consumer.stop()
    if raw:
        return messages
    return [(m.key.decode() if m.key else None, json.loads(m.value)) for m in messages]


async def _partitions_of(
    consumer: AIOKafkaConsumer, topic: str, wait: bool, until: float
) -> set[int]:
    """The topic's partitions, from fresh metadata; with `wait`, until the topic exists."""
    while True:
        await consumer.topics()  # a metadata round trip
        partitions = consumer.partitions_for_topic(topic)
        if partitions or not wait or time.monotonic() >= until:
            return set(partitions or ())
        await asyncio.sleep(0.1)


async def _at_true_end(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], asked_ms: int
) -> bool:
    """Whether every partition has been read up to the high watermark of a fetch answered
    after `asked_ms`."""
    for tp in tps:
        highwater = consumer.highwater(tp)
        if (consumer.last_poll_timestamp(tp) or 0) < asked_ms or highwater is None:
            return False
        if await consumer.position(tp) < highwater:
            return False
    return True
