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
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiokafka import AIOKafkaConsumer

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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    process: subprocess.Popen[str]

    @classmethod
    def start(cls, *args: str) -> Simulator:
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
        _, body = http("GET", f"{self.url}/_sim/truth?taskId={task_id}&offset={offset}&size={size}")
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

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                SECRETS.watch(*self.issued_tokens())
        _terminate(self.process)


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

    @classmethod
    def configure(cls, tmp: Path, overrides: dict[str, dict[str, Any]]) -> Worker:
        config = yaml.safe_load((ROOT / "config" / "config.yml").read_text())
        config["app"]["web_port"] = free_port()
        config["kafka"]["embedded_port"] = free_port()
        config["database"]["path"] = str(tmp / "data" / "crawl_progress.db")
        for section, values in overrides.items():
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

    def status(self, task_id: str = TASK_ID) -> dict[str, Any]:
        code, body = http("GET", f"{self.url}/status?task_id={task_id}")
        assert code == 200, body
        return dict(body["data"])

    def wait_status(
        self, predicate: Any, timeout: float = 60.0, task_id: str = TASK_ID
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status(task_id)
            if predicate(status):
                return status
            time.sleep(0.25)
        raise TimeoutError(f"status never matched; last: {status}\n{self.log()[-2000:]}")

    def stop(self) -> int:
        if self.process is None:
            return 0
        code = _terminate(self.process)
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
            if path.exists():
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
    idle: float = 3.0,
    deadline_s: float = 60.0,
    raw: bool = False,
) -> list[Any]:
    """Every message of `topic` from the beginning, as (key, value) pairs, or as aiokafka's
    ConsumerRecords (partition, offset, raw bytes) with `raw=True`.

    Reads until `expect` messages arrived (and one more idle poll finds nothing), or until
    nothing new arrives for `idle` seconds: the embedded broker reports end offsets short,
    so "reached the end offsets" cannot be trusted.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    messages: list[Any] = []
    try:
        deadline = time.monotonic() + deadline_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            got = [m for records in batch.values() for m in records]
            if got:
                messages.extend(got)
                quiet_since = time.monotonic()
                continue
            enough = expect is not None and len(messages) >= expect
            if enough or time.monotonic() - quiet_since >= idle:
                break
    finally:
        await consumer.stop()
    if raw:
        return messages
    return [(m.key.decode() if m.key else None, json.loads(m.value)) for m in messages]
