"""Query parameters, parsed strictly and refused with a 400 (or 404 for a task), in milliseconds."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from jobstream.web import params
from jobstream.web.responses import HttpError


def request(query: str) -> web.Request:
    return make_mocked_request("GET", f"/consume?{query}")


@pytest.mark.parametrize(("query", "expected"), [("", 10), ("n=1", 1), ("n=1000", 1000)])
def test_params_integer_in_range_parses(query: str, expected: int) -> None:
    assert params.integer(request(query), "n", default=10, low=1, high=1000) == expected


@pytest.mark.parametrize(
    "raw", ["-1", "0", "abc", "1e9", "1001", "%2B5", "007", "1.5", "", "9" * 13, "1%200"]
)
def test_params_integer_bad_value_raises_400(raw: str) -> None:
    with pytest.raises(HttpError) as caught:
        params.integer(request(f"n={raw}"), "n", default=10, low=1, high=1000)
    assert (
        caught.value.code == 400 and "n: expected an integer from 1 to 1000" in caught.value.detail
    )


def test_params_repeated_parameter_raises_400() -> None:
    with pytest.raises(HttpError, match="give it once"):
        params.integer(request("n=1&n=2"), "n", default=10, low=1, high=1000)


@pytest.mark.parametrize("raw", ["a", "job_consumer_group", "A.b-c_9", "x" * 100, "jobstream"])
def test_params_group_valid_name_accepted(raw: str) -> None:
    # "jobstream" (the worker's own Faust group) too: /consume's groups are its own in Kafka.
    assert params.group(request(f"group={raw}"), "default") == raw


@pytest.mark.parametrize("raw", ["", "-a", ".a", "a b", "a/b", "x" * 101, "组"])
def test_params_group_bad_name_raises_400(raw: str) -> None:
    with pytest.raises(HttpError) as caught:
        params.group(request(f"group={raw}"), "default")
    assert caught.value.code == 400


def test_params_unknown_task_id_raises_404() -> None:
    with pytest.raises(HttpError) as caught:
        params.task_id(make_mocked_request("GET", "/status?task_id=x"), ("t1", "t2"))
    assert caught.value.code == 404
