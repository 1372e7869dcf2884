"""Common setup mistakes, made for real: a busy web port, a busy port for the embedded broker,
an unreachable Kafka at start. Each is one clear line (English and Chinese) naming the setting
and its environment variable; the first two exit with code 1, the last keeps retrying while
/health answers, and the worker starts once a broker appears at that address."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator

import pytest
import yaml

from jobstream.embedded.orphans import guarded
from jobstream.embedded.tansu import broker_command
from tests.harness import TASK_ID, Simulator, free_port, http, wait_for_port, wait_until

pytestmark = pytest.mark.slow

LINE = re.compile(r"^\[[^\]]+\] \[\d+\] \[(?P<level>[A-Z]+)\] (?P<text>.*)$", re.M)
CHINESE = re.compile("[\u4e00-\u9fff]")


def serious(log: str) -> list[str]:
    return [m["text"] for m in LINE.finditer(log) if m["level"] in ("WARNING", "ERROR")]


def listening(host: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind((host, port))
    sock.listen()
    return sock


@pytest.fixture
def sim() -> Iterator[Simulator]:
    started = Simulator.start("--rate-limit", "0", "--total", "300")
    yield started
    started.stop()


@pytest.mark.timeout(90)
def test_setup_web_port_busy_exits_1_with_one_line_naming_web_port(worker_factory) -> None:
    worker = worker_factory()
    with listening("0.0.0.0", worker.web_port):
        worker.start()
        assert worker.process is not None
        code = worker.process.wait(timeout=60)
    log = worker.log()

    assert code == 1
    [line] = serious(log)
    assert f"web port {worker.web_port} is already in use" in line
    assert "app.web_port" in line and "WEB_PORT" in line and CHINESE.search(line)
    assert "Traceback" not in log and "Errno 98" not in log
    # Refused before anything started: no broker was left behind.
    assert worker.broker_pids() == []


@pytest.mark.timeout(90)
def test_setup_embedded_broker_port_busy_exits_1_with_one_line(worker_factory) -> None:
    worker = worker_factory()
    port = yaml.safe_load(worker.config_path.read_text())["kafka"]["embedded_port"]
    with listening("127.0.0.1", port):
        worker.start()
        assert worker.process is not None
        code = worker.process.wait(timeout=60)
    log = worker.log()

    assert code == 1
    [line] = serious(log)
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "kafka.embedded_port" in line and "KAFKA_EMBEDDED_PORT" in line
    assert CHINESE.search(line)
    assert "Traceback" not in log


@pytest.mark.timeout(120)
def test_setup_kafka_unreachable_at_start_retries_answers_health_then_starts(
    sim, worker_factory
) -> None:
    port = free_port()
    worker = worker_factory(api=sim.api(), kafka={"bootstrap_servers": f"127.0.0.1:{port}"})
    worker.start()

    def retries() -> list[str]:
        return [t for t in serious(worker.log()) if "cannot reach Kafka" in t]

    # Every few seconds a line; meanwhile the process lives and /health answers.
    wait_until(lambda: len(retries()) >= 2, 30, "two attempts said in the log")
    assert worker.process is not None and worker.process.poll() is None
    assert http("GET", f"{worker.url}/health", timeout=5) == (
        200,
        {"code": 0, "data": {"alive": True}},
    )
    code, body = http("GET", f"{worker.url}/ready", timeout=5)
    assert code == 503 and "broker_reachable" in body["message"]
    first = retries()[0]
    assert f"127.0.0.1:{port}" in first and "KAFKA_BOOTSTRAP_SERVERS" in first
    assert "kafka.bootstrap_servers" in first and CHINESE.search(first)

    # A broker appears at that address: the worker starts and crawls, nothing else to do.
    broker = subprocess.Popen(
        guarded(broker_command("127.0.0.1", port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 15, broker)
        worker.wait_ready(timeout=60)
        status = worker.wait_status(
            lambda s: s["current_offset"] == 300 and s["status"] == "idle", task_id=TASK_ID
        )
    finally:
        worker.stop()
        broker.kill()
        broker.wait()
    log = worker.log()

    print("\n".join(serious(log)))
    assert status["rows"]["published"] + status["rows"]["filtered"] > 0
    assert re.search(rf"Kafka at 127\.0\.0\.1:{port} answers after \d+s", log)
    # The attempts are the only warnings: aiokafka's own failures were held back.
    assert [t for t in serious(log) if "cannot reach Kafka" not in t and "_token" not in t] == []
    assert "Unable to request metadata" not in log and "Traceback" not in log
