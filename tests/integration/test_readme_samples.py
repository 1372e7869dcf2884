"""The answers shown in the README and docs/http.md are what a worker answers today.

Each JSON block marked `<!-- sample: NAME -->` (several names: one JSON document per line) is
compared with the same request made to a worker started as the README's quick start starts it
(the built-in simulator, `ADMIN_TOKEN=change-me`): the same keys at every level, and the same
kind of value wherever neither side is null. Values themselves differ from run to run."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import TASK_ID, Worker, http

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", ROOT / "docs" / "http.md"]
SAMPLE = re.compile(r"<!-- sample: (?P<names>[^>]+?) -->\n```json\n(?P<body>.*?)\n```", re.S)
ADMIN_TOKEN = "change-me"


def documented_samples() -> list[tuple[str, str, Any]]:
    """(document, name, sample) for every marked block, in document order."""
    found = []
    for document in DOCUMENTS:
        for match in SAMPLE.finditer(document.read_text(encoding="utf-8")):
            names = [name.strip() for name in match["names"].split(",")]
            body = match["body"]
            values = (
                [json.loads(body)]
                if len(names) == 1
                else [json.loads(line) for line in body.splitlines()]
            )
            assert len(values) == len(names), f"{document.name}: {names} over {len(values)} lines"
            found += [
                (document.name, name, value) for name, value in zip(names, values, strict=True)
            ]
    return found


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def differences(sample: Any, answer: Any, path: str = "$") -> Iterator[str]:
    if sample is None or answer is None:
        return
    if kind(sample) != kind(answer):
        yield f"{path}: the sample has a {kind(sample)}, the worker answers a {kind(answer)}"
    elif isinstance(sample, dict):
        for key in sample.keys() - answer.keys():
            yield f"{path}.{key}: in the sample, not in the answer"
        for key in answer.keys() - sample.keys():
            yield f"{path}.{key}: in the answer, not in the sample"
        for key in sample.keys() & answer.keys():
            yield from differences(sample[key], answer[key], f"{path}.{key}")
    elif isinstance(sample, list) and sample and answer:
        yield from differences(sample[0], answer[0], f"{path}[0]")


def test_differences_names_what_a_sample_lacks_and_adds() -> None:
    answer = {"code": 0, "data": {"a": 1, "b": [{"c": "x"}], "d": None}}
    assert list(differences(answer, answer)) == []
    assert list(differences({"code": 0, "data": {"a": 1.5, "b": [], "d": "y"}}, answer)) == []
    wrong = {"code": 0, "data": {"a": "1", "b": [{"e": "x"}], "f": 0}}
    assert sorted(differences(wrong, answer)) == [
        "$.data.a: the sample has a str, the worker answers a number",
        "$.data.b[0].c: in the answer, not in the sample",
        "$.data.b[0].e: in the sample, not in the answer",
        "$.data.d: in the answer, not in the sample",
        "$.data.f: in the sample, not in the answer",
    ]


def test_every_documented_request_has_a_sample() -> None:
    names = {name for _, name, _ in documented_samples()}
    assert names == set(REQUESTS), "a sample nobody checks, or a check without its sample"


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    worker = Worker.configure(
        tmp_path_factory.mktemp("readme"), {"app": {"admin_token": ADMIN_TOKEN}}
    )
    try:
        worker.start()
        worker.wait_ready()
        worker.wait_status(
            lambda s: s["status"] == "idle" and s["current_offset"] == s["total"] > 0,
            task_id=TASK_ID,
        )
        yield worker
    finally:
        worker.stop()


def _get(path: str) -> Callable[[Worker], Any]:
    def answer(worker: Worker) -> Any:
        status, body = http("GET", f"{worker.url}{path}")
        assert status == 200, body
        return body

    return answer


def _post(path: str) -> Callable[[Worker], Any]:
    def answer(worker: Worker) -> Any:
        status, body = http(
            "POST", f"{worker.url}{path}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert status == 200, body
        return body

    return answer


def _first_job(worker: Worker) -> Any:
    return _get("/consume?batch_size=1")(worker)["data"][0]


REQUESTS: dict[str, Callable[[Worker], Any]] = {
    "job": _first_job,
    "consume": _get("/consume?batch_size=2"),
    "status": _get("/status"),
    "crawl-stop": _post("/crawl/stop"),
    "crawl-start": _post("/crawl/start"),
    "health": _get("/health"),
    "ready": _get("/ready"),
}


@pytest.mark.parametrize(
    ("document", "name", "sample"),
    documented_samples(),
    ids=[f"{document}:{name}" for document, name, _ in documented_samples()],
)
def test_sample_is_what_the_worker_answers(
    quick_start: Worker, document: str, name: str, sample: Any
) -> None:
    answer = REQUESTS[name](quick_start)
    assert list(differences(sample, answer)) == [], f"{document}, sample {name!r}: {answer}"
