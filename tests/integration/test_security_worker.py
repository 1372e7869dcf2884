"""A real worker refused by an API host that echoes the wrong password in every shape and pads
its refusal to 300 KB (tests/hostile_api.py), with tokens whose heads are ordinary words of
the log: no slice of a secret (six characters, in any encoding) reaches the worker's log,
/status, job_commands, the SQLite mirror or an alert's body; each of them holds the error
clipped to about 1 KB; every log line stays one whole line; the local files are private.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobstream.embedded.orphans import guarded
from jobstream.redaction import ERROR_CHARS
from tests.harness import ROOT, TASK_ID, Broker, Worker, http, read_topic, wait_until
from tests.hostile_api import ECHO_HEAD
from tests.leaks import leaked_slices
from tests.robots import ThreadedReceiver

pytestmark = pytest.mark.slow

USER = "jobs-account"
PASSWORD = "offs" + "Xq7#pw9Lk2/Mz&<é>"
ADMIN = "task" + "4Hb9Ns7Ry2Ld"
READ = "Read" + "8Zt3QvKp1Wn"
SECRETS = [PASSWORD, ADMIN, READ]
PAD = 300_000
# The error as kept: the API's message (clipped where it enters) inside a sentence or two.
KEPT = ERROR_CHARS + 200


@pytest.fixture
def hostile_api() -> Iterator[str]:
    process = subprocess.Popen(
        guarded(
            [
                sys.executable,
                "-m",
                "tests.hostile_api",
                "--username",
                USER,
                "--password",
                PASSWORD,
                "--pad",
                str(PAD),
            ]
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert url.startswith("http"), url
    yield url
    process.terminate()
    process.wait(10)
    process.stdout.close()


@pytest.fixture
def robots() -> Iterator[ThreadedReceiver]:
    receiver = ThreadedReceiver()
    yield receiver
    receiver.stop()


def status_of(worker: Worker) -> dict[str, Any]:
    code, body = http(
        "GET", f"{worker.url}/status?task_id={TASK_ID}", headers={"Authorization": f"Bearer {READ}"}
    )
    assert code == 200, body
    return dict(body["data"])


async def test_wrong_password_echoed_by_the_api_leaves_no_piece_of_any_secret(
    broker: Broker,
    hostile_api: str,
    robots: ThreadedReceiver,
    worker_factory: Callable[..., Worker],
) -> None:
    signing = robots.robots.secrets
    worker = worker_factory(
        app={"admin_token": ADMIN, "read_token": READ},
        api={"base_url": hostile_api, "username": USER, "password": PASSWORD, "max_retries": 0},
        kafka={"bootstrap_servers": broker.bootstrap},
        crawler={"interval": 1},
        alerts={
            "webhooks": [
                {"type": "json", "url": robots.robots.url("json"), "secret": signing["json"]},
                {
                    "type": "dingtalk",
                    "url": robots.robots.url("dingtalk"),
                    "secret": signing["dingtalk"],
                },
            ],
            "check_interval": 1,
            "lag_threshold": 0,
        },
    ).start()
    worker.wait_ready(90)
    failed = wait_until(
        lambda: (s := status_of(worker))["status"] == "error" and s["last_error"] and s,
        60,
        "the crawl failing on the refused password",
    )
    wait_until(
        lambda: robots.robots.accepted("json") and robots.robots.accepted("dingtalk"),
        60,
        "the alerts, accepted",
    )
    wait_until(lambda: worker.log().count("crawl run failed") >= 2, 30, "a second failed run")
    worker.stop()  # a failed run a second: job_commands would never fall quiet

    commands = await read_topic(broker.bootstrap, "job_commands", raw=True)
    with sqlite3.connect(worker.config_path.parent / "data" / "crawl_progress.db") as db:
        (stored,) = db.execute(
            "SELECT last_error FROM crawl_progress WHERE task_id = ?", (TASK_ID,)
        ).fetchone()
    alerts = [got.raw.decode() for kind in ("json", "dingtalk") for got in robots.received(kind)]
    log = worker.log()
    places: dict[str, list[str]] = {
        "/status": [json.dumps(failed, ensure_ascii=False)],
        "SQLite": [stored],
        "job_commands": [r.value.decode() for r in commands],
        "alert bodies": alerts,
        "the log": log.splitlines(),
    }

    # What the API said is there, masked and clipped, and nothing of a secret anywhere.
    last_error = failed["last_error"]
    assert ECHO_HEAD in last_error and "more characters)" in last_error, last_error
    assert len(last_error) <= KEPT and stored == last_error
    for where, texts in places.items():
        leaks = [leak for text in texts for leak in leaked_slices(text, SECRETS, user=USER)]
        assert leaks == [], f"{where}: {leaks[:3]}"
        if where != "/status":  # the whole answer: its last_error is checked above
            longest = max(len(t) for t in texts)
            assert longest < KEPT + (3000 if where == "alert bodies" else 500), (where, longest)
    assert any(ECHO_HEAD in json.loads(a).get("text", a) for a in alerts)

    # The lines that held a secret are whole lines, and the words the secrets begin with are
    # still words.
    assert "Logging error" not in log and "not all arguments converted" not in log
    assert f"task_id={TASK_ID} offset=0 crawl run failed: authentication:" in log
    assert "[^ReaderPool]: Starting" in log
    assert "***_id" not in log and "***=" not in log and "***erPool" not in log

    # The worker's files are its user's alone.
    files = list((worker.config_path.parent / "data").glob("crawl_progress*"))
    assert files
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
